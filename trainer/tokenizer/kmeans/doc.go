// Package kmeans learns codebooks by mini-batch k-means and maps vectors to
// their nearest code. The image (VQ) and speech-unit tokenizers share it.
package kmeans
