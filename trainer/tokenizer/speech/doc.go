// Package speech turns audio into discrete speech units and back.
//
// Features: log-mel frames of 16 kHz audio (LogMel): a 25 ms periodic Hann
// window (400 samples) every 10 ms (160 samples), zero-padded to a 512-point
// FFT, the power spectrum summed by 80 triangular filters on the Slaney mel
// scale (linear below 1 kHz, logarithmic above; 0 to 8 kHz, each filter's
// peak 1), then the natural log of (mel power + LogEps). Frame t is centred
// on sample t*160, with zeros beyond the ends, so a clip of N samples has
// ceil(N/160) frames.
//
// Units: each band is normalised by its mean and standard deviation over
// the training frames, and mini-batch k-means (mom/trainer/tokenizer/kmeans)
// learns the unit centroids. Encoding maps each frame to its nearest
// centroid; with Collapse, a run of one unit becomes one token, and the
// unit's mean run length (learnt in training) re-expands it on decoding.
//
// Decoding: a unit's centroid, de-normalised, is a log-mel frame; the
// pseudo-inverse of the filterbank (clipped at zero) gives a linear power
// spectrum, and Griffin-Lim (the fast variant with momentum, 32 iterations)
// finds a waveform with that magnitude. The result is intelligible but
// buzzy: the units keep the spectral envelope and lose the pitch detail.
// Evaluate reports how much is lost, split into quantisation, vocoding and
// the whole round trip.
//
// A tokenizer is saved as safetensors (centroids, normalisation, run
// lengths) with its settings in the metadata, so other tools can read it.
package speech
