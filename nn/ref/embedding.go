package ref

// Embedding gathers rows of the table e (v, d): out[t] = e[ids[t]] for the
// t tokens.
func Embedding[T Float](out, e []T, ids []uint32, t, d int) {
	for i := 0; i < t; i++ {
		id := int(ids[i])
		copy(out[i*d:(i+1)*d], e[id*d:(id+1)*d])
	}
}

// EmbeddingBackward accumulates the table's gradient: de[ids[t]] += dout[t].
func EmbeddingBackward[T Float](de, dout []T, ids []uint32, t, d int) {
	for i := 0; i < t; i++ {
		id := int(ids[i])
		for j := 0; j < d; j++ {
			de[id*d+j] += dout[i*d+j]
		}
	}
}
