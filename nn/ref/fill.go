package ref

// Fill sets every element of x to v.
func Fill[T Float](x []T, v T) {
	for i := range x {
		x[i] = v
	}
}
