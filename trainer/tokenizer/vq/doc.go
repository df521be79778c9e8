// Package vq is the image tokenizer: a vector-quantisation codebook
// learned by mini-batch k-means over p x p patches (package kmeans), for
// the settings that see images as discrete tokens (Chameleon, three
// modalities). An image of W x H pixels becomes (H/p)*(W/p) codes in
// raster order; a code decodes to its centroid, so decode(encode(x)) is x
// with each patch replaced by the mean of the training patches nearest to
// it, and Evaluate reports what that loses (MSE and PSNR). The defaults,
// 4x4 patches and 512 codes, turn a 28x28 Fashion-MNIST image into 49
// tokens.
//
// Patchify and Unpatchify are the continuous counterpart for the
// Transfusion setting: the same patches, normalised to [-1, 1], with no
// codebook.
//
// Attributes measures what a caption can say about an image (brightness,
// contrast, size and shape of the object, symmetry, where its mass sits)
// and Attrs.Words turns that into varied descriptive words.
//
// A tokenizer is saved as a safetensors file (see FileFormat) that other
// tools can read: the codebook tensor and its shapes in the metadata.
package vq
