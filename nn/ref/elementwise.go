package ref

// Add sets y = a + b.
func Add[T Float](y, a, b []T) {
	for i := range y {
		y[i] = a[i] + b[i]
	}
}

// AXPY sets y += alpha*x.
func AXPY[T Float](y, x []T, alpha T) {
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// Scale sets y *= s.
func Scale[T Float](y []T, s T) {
	for i := range y {
		y[i] *= s
	}
}
