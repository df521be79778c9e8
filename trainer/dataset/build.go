package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/dataset/source"
	"mom/trainer/media"
	"mom/trainer/tokenizer/bpe"
	"mom/trainer/tokenizer/speech"
	"mom/trainer/tokenizer/vq"
)

// Options configure Build.
type Options struct {
	Setting mom.Setting
	Out     string // the dataset folder to create; it must not exist
	// Limit caps the items taken from each kind of source: images, text
	// passages, and (three modalities) Limit/2 synthesised utterances.
	// 0 takes everything (and 10,000 utterances).
	Limit int
	// Utterances, if positive, is the number of synthesised utterances
	// instead.
	Utterances int
	TextVocab  int // BPE vocabulary, specials and bytes included (default 4096)
	// TextTokenizer, if set, is a tokenizer.json to use instead of training
	// one (so that datasets share a text vocabulary, e.g. a text-only
	// dataset and a three-modality one for upcycling); it must hold the
	// setting's markers.
	TextTokenizer string
	ImageCodes    int // VQ codes (default 512)
	ImagePatch    int // VQ / continuous patch side (default 4)
	ImageSize     int // images are made ImageSize x ImageSize grey (default 28)
	SpeechUnits   int // speech units (default 512)
	Seed          uint64
	// EvalFraction of the items (by item) is held out (default 0.05).
	EvalFraction float64
	// System takes the corpora installed by the set-up (Fashion-MNIST,
	// fortunes, the KJV Bible, WordNet); the user's folders below add to
	// them (or replace them when System is false).
	System      bool
	TextDirs    []string // folders of .txt files
	ImageDir    string   // folder of PNG/JPEG images ...
	Captions    string   // ... with a JSONL captions file
	SpeechDir   string   // folder of .wav files ...
	Transcripts string   // ... with a JSONL transcripts file
	// Progress receives one line per stage and progress within long ones.
	Progress io.Writer
}

func (o *Options) defaults() {
	if o.TextVocab == 0 {
		o.TextVocab = 4096
	}
	if o.ImageCodes == 0 {
		o.ImageCodes = 512
	}
	if o.ImagePatch == 0 {
		o.ImagePatch = 4
	}
	if o.ImageSize == 0 {
		o.ImageSize = 28
	}
	if o.SpeechUnits == 0 {
		o.SpeechUnits = 512
	}
	if o.EvalFraction == 0 {
		o.EvalFraction = 0.05
	}
}

// Validate checks the options without touching the disk beyond a stat of
// the output and the user's folders.
func (o *Options) Validate() error {
	o.defaults()
	spec, err := mom.LookupSetting(o.Setting)
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	switch {
	case o.Out == "":
		return errors.New("dataset: no output folder (--out)")
	case o.Limit < 0 || o.Utterances < 0:
		return fmt.Errorf("dataset: --limit %d and --utterances %d must not be negative", o.Limit, o.Utterances)
	case o.TextVocab < 256+16 || o.TextVocab > 60000:
		return fmt.Errorf("dataset: --text-vocab %d: want 272 to 60000 (the 256 bytes and the markers, and room in the 65,536-id vocabulary)", o.TextVocab)
	case o.ImageCodes < 2 || o.ImageCodes > 16384:
		return fmt.Errorf("dataset: --image-codes %d: want 2 to 16384", o.ImageCodes)
	case o.SpeechUnits < 2 || o.SpeechUnits > 8192:
		return fmt.Errorf("dataset: --speech-units %d: want 2 to 8192", o.SpeechUnits)
	case o.ImagePatch < 1 || o.ImageSize < o.ImagePatch || o.ImageSize%o.ImagePatch != 0:
		return fmt.Errorf("dataset: image size %d is not a multiple of the patch %d", o.ImageSize, o.ImagePatch)
	case !(o.EvalFraction > 0 && o.EvalFraction < 0.5):
		return fmt.Errorf("dataset: held-out fraction %g: want it in (0, 0.5)", o.EvalFraction)
	case (o.ImageDir == "") != (o.Captions == ""):
		return errors.New("dataset: --images and --captions go together")
	case (o.SpeechDir == "") != (o.Transcripts == ""):
		return errors.New("dataset: --speech and --transcripts go together")
	case !o.System && len(o.TextDirs) == 0:
		return errors.New("dataset: no text: give --text folders or use the installed corpora")
	}
	if _, err := os.Lstat(o.Out); err == nil {
		return fmt.Errorf("dataset: %s exists; mom data build never overwrites a dataset (choose another --out or remove it)", o.Out)
	} else if !os.IsNotExist(err) {
		return fmt.Errorf("dataset: %w", err)
	}
	has := func(name string) bool { return (mom.Config{Modalities: spec.Modalities}).ModalityIndex(name) >= 0 }
	if !has("image") && o.ImageDir != "" {
		return fmt.Errorf("dataset: the %s setting has no images (--images)", o.Setting)
	}
	if !has("speech") && o.SpeechDir != "" {
		return fmt.Errorf("dataset: the %s setting has no speech (--speech)", o.Setting)
	}
	if has("image") && !o.System && o.ImageDir == "" {
		return fmt.Errorf("dataset: the %s setting needs images: use the installed Fashion-MNIST or give --images and --captions", o.Setting)
	}
	for _, d := range append(slices.Clone(o.TextDirs), o.ImageDir, o.SpeechDir) {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return fmt.Errorf("dataset: %s is not a folder", d)
		}
	}
	for _, f := range []string{o.Captions, o.Transcripts, o.TextTokenizer} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("dataset: %s is not a file", f)
		}
	}
	return nil
}

// builder holds a build's state.
type builder struct {
	o     Options
	spec  mom.SettingSpec
	tmp   string
	start time.Time
	stage int
	man   *Manifest

	texts  []source.Text
	images []source.Image
	utts   []source.Utterance
	gloss  map[string][]string

	textTok   *bpe.Tokenizer
	imageTok  *vq.Tokenizer
	speechTok *speech.Tokenizer
	vocab     data.Vocab
	mod       map[string]int // modality name -> id
}

// Build makes a dataset folder: it reads the sources, splits them by item,
// trains the tokenizers on the training split, assembles documents, and
// writes the token files, the tokenizers and the manifest. It works in a
// temporary folder beside Out and renames it into place only at the end,
// so a failed or interrupted build leaves nothing behind (and an existing
// folder is never touched). The result depends only on the options and
// the sources.
func Build(ctx context.Context, o Options) (*Manifest, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	spec, _ := mom.LookupSetting(o.Setting)
	b := &builder{o: o, spec: spec, start: time.Now(), mod: map[string]int{}}
	for i, m := range spec.Modalities {
		b.mod[m.Name] = i
	}
	parent := filepath.Dir(filepath.Clean(o.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(o.Out)+".building-*")
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	b.tmp = tmp
	defer os.RemoveAll(tmp) // a no-op after the rename
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"reading sources", b.readSources},
		{"training the text tokenizer", b.trainText},
		{"training the image tokenizer", b.trainImage},
		{"speaking and training the speech tokenizer", b.trainSpeech},
		{"writing documents", b.writeDocuments},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		t0 := time.Now()
		b.stage++
		b.logf("[%d/%d] %s", b.stage, len(steps), s.name)
		if err := s.fn(ctx); err != nil {
			return nil, err
		}
		b.logf("      done in %.1f s", time.Since(t0).Seconds())
	}
	b.man.BuildSeconds = math.Round(time.Since(b.start).Seconds()*10) / 10
	b.man.Created = time.Now().UTC().Format(time.RFC3339)
	if err := b.man.write(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, o.Out); err != nil {
		return nil, fmt.Errorf("dataset: moving the finished build into place: %w", err)
	}
	b.logf("dataset %s: %d train and %d held-out tokens in %.0f s", o.Out, b.man.Splits["train"].Tokens, b.man.Splits["eval"].Tokens, b.man.BuildSeconds)
	return b.man, nil
}

func (b *builder) logf(format string, a ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, "data build: "+format+"\n", a...)
	}
}

// progress returns a callback that logs every quarter of a stage that
// has run for a few seconds.
func (b *builder) progress(what string) func(done, total int) {
	last, t0 := 0, time.Now()
	return func(done, total int) {
		if total <= 0 || time.Since(t0) < 3*time.Second {
			return
		}
		if q := done * 4 / total; q > last {
			last = q
			b.logf("      %s %d/%d", what, done, total)
		}
	}
}

func (b *builder) has(name string) bool { _, ok := b.mod[name]; return ok }

// isEval assigns an item to the held-out split by a hash of the seed and
// its ID, so that an item never lands in both splits and the assignment
// does not depend on the order or number of other items.
func (b *builder) isEval(id string) bool {
	h := uint64(14695981039346656037) ^ b.o.Seed*0x9e3779b97f4a7c15
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return float64(h>>11)/float64(1<<53) < b.o.EvalFraction
}

// sample picks up to n items (all when n <= 0), keeping their order, by a
// seeded draw.
func sample[T any](items []T, n int, seed uint64, salt string) []T {
	if n <= 0 || n >= len(items) {
		return items
	}
	rng := rand.New(rand.NewPCG(seed, hashString(salt)))
	idx := rng.Perm(len(items))[:n]
	slices.Sort(idx)
	out := make([]T, n)
	for i, k := range idx {
		out[i] = items[k]
	}
	return out
}

func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func (b *builder) readSources(ctx context.Context) error {
	o := b.o
	b.man = &Manifest{Format: ManifestFormat, Version: ManifestVersion, Setting: string(o.Setting), Seed: o.Seed, Limit: o.Limit,
		Tokenizers: map[string]string{}, TokenizerInfo: map[string]TokenizerInfo{}, Splits: map[string]Split{},
		Documents: map[string]int{}, Figures: map[string]float64{}}
	// Sources are counted twice: what each offered (here), and what the
	// build took and how it split (countSources, once sampled).
	addSource := func(name, path string, n int) {
		b.man.Sources = append(b.man.Sources, Source{Name: name, Path: path, Available: n})
	}
	var texts []source.Text
	if o.System {
		var missing []string
		fort, err := source.Fortunes(source.FortunesDir)
		if err != nil {
			missing = append(missing, fmt.Sprintf("fortunes (Debian package fortunes): %v", err))
		}
		bible, err := source.BibleKJV()
		if err != nil {
			missing = append(missing, fmt.Sprintf("the King James Bible (Debian package bible-kjv): %v", err))
		}
		wn, err := source.WordNetTexts(source.WordNetDir)
		if err != nil {
			missing = append(missing, fmt.Sprintf("WordNet (Debian package wordnet-base): %v", err))
		}
		if b.gloss, err = source.WordNetGlosses(source.WordNetDir); err != nil && b.has("image") {
			missing = append(missing, fmt.Sprintf("WordNet glosses (Debian package wordnet-base): %v", err))
		}
		if len(missing) > 0 {
			return fmt.Errorf("dataset: the installed corpora are incomplete (run `make deps`, or pass --no-system with your own folders):\n  %s", strings.Join(missing, "\n  "))
		}
		for _, s := range []struct {
			name, path string
			ts         []source.Text
		}{{"fortunes", source.FortunesDir, fort}, {"bible-kjv", "bible -f", bible}, {"wordnet", source.WordNetDir, wn}} {
			addSource(s.name, s.path, len(s.ts))
			texts = append(texts, s.ts...)
		}
	}
	for _, dir := range o.TextDirs {
		ts, err := source.TextFolder(dir)
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		addSource("user-text", dir, len(ts))
		texts = append(texts, ts...)
	}
	if len(texts) == 0 {
		return errors.New("dataset: no text passages found")
	}
	// Each text source gets an equal share of the limit, so that WordNet's
	// many short glosses do not crowd out the prose.
	bySource := map[string][]source.Text{}
	var order []string
	for _, t := range texts {
		if _, ok := bySource[t.Source]; !ok {
			order = append(order, t.Source)
		}
		bySource[t.Source] = append(bySource[t.Source], t)
	}
	for _, src := range order {
		share := 0
		if o.Limit > 0 {
			share = max(1, o.Limit/len(order))
		}
		b.texts = append(b.texts, sample(bySource[src], share, o.Seed, "texts:"+src)...)
	}

	if b.has("image") {
		if o.System {
			train, test, err := source.FashionMNIST(source.FashionMNISTDir, imageLimit(o.Limit))
			if err != nil {
				return fmt.Errorf("dataset: %w (the set-up installs Debian's dataset-fashion-mnist)", err)
			}
			imgs := append(train, test...)
			addSource("fashion-mnist", source.FashionMNISTDir, len(imgs))
			b.images = append(b.images, imgs...)
		}
		if o.ImageDir != "" {
			imgs, err := source.ImageFolder(o.ImageDir, o.Captions)
			if err != nil {
				return fmt.Errorf("dataset: %w", err)
			}
			addSource("user-image", o.ImageDir, len(imgs))
			b.images = append(b.images, imgs...)
		}
		b.images = sample(b.images, o.Limit, o.Seed, "images")
		for i := range b.images {
			im := b.images[i].Image.Gray()
			if im.W != o.ImageSize || im.H != o.ImageSize {
				im = im.Resize(o.ImageSize, o.ImageSize)
			}
			b.images[i].Image = im
			if b.images[i].Caption == "" {
				b.images[i].Caption = caption(b.images[i], b.gloss, o.Seed)
			}
		}
	}
	if b.has("speech") {
		if o.SpeechDir != "" {
			us, err := source.SpeechFolder(o.SpeechDir, o.Transcripts)
			if err != nil {
				return fmt.Errorf("dataset: %w", err)
			}
			addSource("user-speech", o.SpeechDir, len(us))
			b.utts = append(b.utts, us...)
		}
	}
	return ctx.Err()
}

// imageLimit is how many images of each Fashion-MNIST split to read for a
// build limited to n images (all when n is 0).
func imageLimit(n int) int {
	if n <= 0 {
		return 0
	}
	return n
}

func (b *builder) trainText(ctx context.Context) error {
	specials := []string{SpecialDoc, SpecialEnd}
	for _, m := range b.spec.Modalities[1:] {
		specials = append(specials, BeginMarker(m.Name), EndMarker(m.Name))
	}
	corpus := func(yield func(string) bool) {
		for _, t := range b.texts {
			if !b.isEval(t.ID) && !yield(t.Text) {
				return
			}
		}
		for _, im := range b.images {
			if !b.isEval(im.ID) && !yield(im.Caption) {
				return
			}
		}
		for _, u := range b.utts {
			if !b.isEval(u.ID) && !yield(u.Transcript) {
				return
			}
		}
	}
	var tok *bpe.Tokenizer
	var err error
	if b.o.TextTokenizer != "" {
		if tok, err = bpe.Load(b.o.TextTokenizer); err != nil {
			return fmt.Errorf("dataset: --text-tokenizer: %w", err)
		}
		var missing []string
		for _, s := range specials {
			if _, ok := tok.Special(s); !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("dataset: --text-tokenizer %s lacks the markers %v that %s documents need", b.o.TextTokenizer, missing, b.o.Setting)
		}
		b.logf("      using %s (%d ids)", b.o.TextTokenizer, tok.Size())
	} else if tok, err = bpe.Train(corpus, bpe.TrainConfig{VocabSize: b.o.TextVocab, Specials: specials, Progress: b.progress("merges")}); err != nil {
		return fmt.Errorf("dataset: text tokenizer: %w", err)
	}
	b.textTok = tok
	if err := tok.Save(filepath.Join(b.tmp, textTokenizerFile)); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	b.man.Specials = map[string]int{}
	for _, s := range specials {
		id, ok := tok.Special(s)
		if !ok {
			return fmt.Errorf("dataset: the text tokenizer lost the special %q", s)
		}
		b.man.Specials[s] = int(id)
	}
	if err := b.addTokenizer("text", textTokenizerFile, "bpe", 1, tok.Size()); err != nil {
		return err
	}
	// Compression on held-out text: UTF-8 bytes per token.
	var nb, nt int
	for _, t := range b.texts {
		if b.isEval(t.ID) {
			nb += len(t.Text)
			nt += len(tok.Encode(t.Text))
		}
	}
	if nt > 0 {
		b.man.Figures["text_bytes_per_token"] = round3(float64(nb) / float64(nt))
		b.logf("      %d ids; held-out text: %.2f bytes per token", tok.Size(), float64(nb)/float64(nt))
	}
	return ctx.Err()
}

func (b *builder) trainImage(ctx context.Context) error {
	m, ok := b.mod["image"]
	if !ok {
		return nil
	}
	var train, eval []*media.Image
	for _, im := range b.images {
		if b.isEval(im.ID) {
			eval = append(eval, im.Image)
		} else {
			train = append(train, im.Image)
		}
	}
	if len(train) == 0 {
		return errors.New("dataset: no training images")
	}
	if b.spec.Modalities[m].Continuous {
		b.man.PatchDim = b.o.ImagePatch * b.o.ImagePatch
		b.logf("      continuous patches: %dx%d, %d values, normalised to [-1, 1]", b.o.ImagePatch, b.o.ImagePatch, b.man.PatchDim)
		return nil
	}
	if len(train)*(b.o.ImageSize/b.o.ImagePatch)*(b.o.ImageSize/b.o.ImagePatch) < b.o.ImageCodes {
		return fmt.Errorf("dataset: %d training images have too few patches for %d image codes (lower --image-codes)", len(train), b.o.ImageCodes)
	}
	tok, err := vq.Train(train, vq.Config{Patch: b.o.ImagePatch, Codes: b.o.ImageCodes, Seed: b.o.Seed, Progress: b.progress("k-means steps")})
	if err != nil {
		return fmt.Errorf("dataset: image tokenizer: %w", err)
	}
	b.imageTok = tok
	if err := tok.Save(filepath.Join(b.tmp, imageTokenizerFile)); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if err := b.addTokenizer("image", imageTokenizerFile, "vq", 1, tok.Size()); err != nil {
		return err
	}
	if len(eval) > 0 {
		mse, psnr, err := tok.Evaluate(eval)
		if err != nil {
			return fmt.Errorf("dataset: image tokenizer: %w", err)
		}
		b.man.Figures["image_mse"] = round6(mse)
		b.man.Figures["image_psnr_db"] = round3(psnr)
		b.logf("      %d codes of %dx%d patches; held-out reconstruction MSE %.5f, PSNR %.2f dB", tok.Size(), b.o.ImagePatch, b.o.ImagePatch, mse, psnr)
	}
	return ctx.Err()
}

func (b *builder) trainSpeech(ctx context.Context) error {
	if !b.has("speech") {
		return nil
	}
	// Synthesised utterances (with the installed sources): captions of
	// images and short sentences of the text corpus, each spoken by one of
	// several voices and speeds.
	n := b.o.Limit / 2
	if b.o.Limit == 0 {
		n = 10000
	}
	if b.o.Utterances > 0 {
		n = b.o.Utterances
	}
	if !b.o.System {
		n = 0
	}
	var texts []string
	var ids []string
	for _, im := range sample(b.images, max(n/2, 1), b.o.Seed, "speech-captions")[:min(n/2, len(b.images))] {
		texts = append(texts, im.Caption)
		ids = append(ids, im.ID) // the utterance goes where its image goes
	}
	var sentences []source.Text
	for _, t := range b.texts {
		if w := len(strings.Fields(t.Text)); w >= 4 && w <= 24 {
			sentences = append(sentences, t)
		}
	}
	if n-len(texts) <= 0 {
		sentences = nil // sample takes all for n <= 0; without the corpora, none are spoken
	}
	for _, t := range sample(sentences, n-len(texts), b.o.Seed, "speech-sentences") {
		texts = append(texts, t.Text)
		ids = append(ids, t.ID)
	}
	if len(texts) > 0 {
		voices := source.Voices()
		audio, err := source.SpeakAll(texts, voices, runtime.GOMAXPROCS(0), b.progress("utterances"))
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		for i, a := range audio {
			b.utts = append(b.utts, source.Utterance{ID: ids[i], Source: "espeak-ng", Audio: a, Transcript: texts[i]})
		}
		b.man.Sources = append(b.man.Sources, Source{Name: "espeak-ng", Path: "espeak-ng", Available: len(texts)})
	}
	var train, eval []*media.Audio
	secs := 0.0
	for _, u := range b.utts {
		secs += u.Audio.Seconds()
		if b.isEval(u.ID) {
			eval = append(eval, u.Audio)
		} else {
			train = append(train, u.Audio)
		}
	}
	if len(train) == 0 {
		return errors.New("dataset: no training speech")
	}
	b.logf("      %d utterances, %.0f s of audio; training %d units", len(b.utts), secs, b.o.SpeechUnits)
	tok, err := speech.Train(train, speech.Config{Units: b.o.SpeechUnits, Collapse: true, Seed: b.o.Seed, Progress: b.progress("k-means steps")})
	if err != nil {
		return fmt.Errorf("dataset: speech tokenizer: %w", err)
	}
	b.speechTok = tok
	if err := tok.Save(filepath.Join(b.tmp, speechTokenizerFile)); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	if err := b.addTokenizer("speech", speechTokenizerFile, "units", 1, tok.Size()); err != nil {
		return err
	}
	if len(eval) > 0 {
		st, err := tok.Evaluate(eval[:min(len(eval), 24)]) // Griffin-Lim twice per clip: a sample
		if err != nil {
			return fmt.Errorf("dataset: speech tokenizer: %w", err)
		}
		for k, v := range map[string]float64{"tokens_per_second": st.TokensPerSecond, "frames_per_second": st.FramesPerSecond,
			"units_used_fraction": st.UnitsUsedFraction, "entropy_bits": st.EntropyBits, "mean_run_length": st.MeanRunLength,
			"quantisation_db": st.QuantDB, "vocoder_db": st.VocoderDB, "resynthesis_db": st.ResynthDB} {
			b.man.Figures["speech_"+k] = round3(v)
		}
		b.logf("      held-out speech: %s", st)
	}
	return ctx.Err()
}

func (b *builder) addTokenizer(mod, file, kind string, version, size int) error {
	sum, _, err := fileSHA256(filepath.Join(b.tmp, file))
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	b.man.Tokenizers[mod] = file
	b.man.TokenizerInfo[mod] = TokenizerInfo{Kind: kind, Version: version, Size: size, SHA256: sum}
	return nil
}

func round3(x float64) float64 { return math.Round(x*1e3) / 1e3 }
func round6(x float64) float64 { return math.Round(x*1e6) / 1e6 }

// countSources records how many items of each source the build took and
// how they split.
func (b *builder) countSources() {
	count := func(src, id string) {
		for i := range b.man.Sources {
			if s := &b.man.Sources[i]; s.Name == src {
				s.Items++
				if b.isEval(id) {
					s.Eval++
				} else {
					s.Train++
				}
			}
		}
	}
	for _, t := range b.texts {
		count(t.Source, t.ID)
	}
	for _, im := range b.images {
		count(im.Source, im.ID)
	}
	for _, u := range b.utts {
		count(u.Source, u.ID)
	}
	for _, s := range b.man.Sources {
		b.logf("      %s: %d of %d items (%d train, %d held out)", s.Name, s.Items, s.Available, s.Train, s.Eval)
	}
}
