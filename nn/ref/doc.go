// Package ref holds the plain-Go reference twin of every WGSL kernel of
// package nn: same name, same argument order (outputs first), written as
// plain loops that a reader can check against the math of DESIGN.md §1.
// The functions are generic over float32 and float64: the kernel tests run
// them in float64 as the truth for the GPU's float32, and the gradient tests
// check every backward against central finite differences in float64.
package ref

// Float is the element type of the reference functions.
type Float interface{ ~float32 | ~float64 }
