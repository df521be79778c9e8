package gpu

import (
	"errors"
	"strings"
	"testing"
)

// The presenting path is tested end to end by package viz (a window under
// Xvfb, checked pixel by pixel from a screenshot). These tests cover what
// needs no display: the format tables, textures, render pipelines and bind
// groups, their validation errors, and that nothing leaks.

const blitTestWGSL = `
@group(0) @binding(0) var img: texture_2d<f32>; // (H, W) RGBA

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
	return vec4<f32>(f32((i << 1u) & 2u) * 2.0 - 1.0, f32(i & 2u) * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) pos: vec4<f32>) -> @location(0) vec4<f32> {
	return textureLoad(img, vec2<i32>(pos.xy), 0);
}
`

func TestFormatTables(t *testing.T) {
	for _, rt := range []Runtime{Dawn, WGPU} {
		seen := map[uint32]bool{}
		for f, id := range formatIDs[rt] {
			if seen[id] {
				t.Errorf("%s: format id 0x%x used twice", rt, id)
			}
			seen[id] = true
			if got := formatName(rt, id); got != f {
				t.Errorf("%s: formatName(0x%x) = %s, want %s", rt, id, got, f)
			}
			if f.BytesPerPixel() == 0 {
				t.Errorf("%s has no size", f)
			}
		}
		if got := formatName(rt, 0xABCDE); !strings.HasPrefix(string(got), string(rt)+":") {
			t.Errorf("%s: unknown format reads %q", rt, got)
		}
	}
	// The numbering differs: Dawn's BGRA8Unorm is wgpu-native's RGBA8UnormSrgb.
	if formatIDs[Dawn][FormatBGRA8Unorm] != formatIDs[WGPU][FormatRGBA8UnormSRGB] {
		t.Error("the tables no longer show the known renumbering; check them against the headers")
	}
	if !FormatBGRA8UnormSRGB.SRGB() || FormatBGRA8Unorm.SRGB() {
		t.Error("SRGB()")
	}
}

func TestTextureAndRenderPipeline(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		before := d.LiveObjects()
		tex, err := d.NewTexture("test image", 64, 32, FormatRGBA8UnormSRGB, TextureBinding|TextureCopyDst)
		if err != nil {
			t.Fatal(err)
		}
		pix := make([]byte, 4*64*32)
		for i := range pix {
			pix[i] = byte(i)
		}
		if err := tex.Write(pix, 4*64); err != nil {
			t.Fatal(err)
		}
		// Rows wider than the image (a sub-image of a larger one).
		wide := make([]byte, 4*80*32)
		if err := tex.Write(wide, 4*80); err != nil {
			t.Fatalf("padded rows: %v", err)
		}
		if err := tex.Write(pix[:100], 4*64); err == nil {
			t.Error("short data: want an error")
		}
		if err := tex.Write(pix, 8); err == nil {
			t.Error("bytesPerRow below a row: want an error")
		}
		sh, err := d.Shader("surface_test_blit", blitTestWGSL)
		if err != nil {
			t.Fatal(err)
		}
		p, err := d.NewRenderPipeline(sh, "vs", "fs", FormatBGRA8UnormSRGB, 1)
		if err != nil {
			t.Fatal(err)
		}
		g, err := d.NewRenderBindGroup(p, RenderBinding{Texture: tex})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.NewRenderBindGroup(p, RenderBinding{}); err == nil {
			t.Error("empty binding: want an error")
		}
		if _, err := d.NewRenderPipeline(sh, "vs", "no_such_entry", FormatBGRA8UnormSRGB, 1); err == nil {
			t.Error("missing fragment entry point: want an error")
		}
		if err := d.Check("after the expected errors"); err != nil {
			t.Errorf("errors leaked out of the scopes: %v", err)
		}
		g.Release()
		p.Release()
		tex.Release()
		d.ReleaseShader(sh)
		after := d.LiveObjects()
		for k, n := range after {
			if n != before[k] {
				t.Errorf("%d live %s objects, %d before", n, k, before[k])
			}
		}
	})
}

func TestTextureErrors(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		if _, err := d.NewTexture("x", 0, 4, FormatRGBA8Unorm, TextureBinding); err == nil {
			t.Error("zero width: want an error")
		}
		big := int(d.Limits.MaxTextureDimension2D) + 1
		if _, err := d.NewTexture("x", big, 4, FormatRGBA8Unorm, TextureBinding); err == nil || !strings.Contains(err.Error(), "maxTextureDimension2D") {
			t.Errorf("too wide: %v", err)
		}
		if _, err := d.NewTexture("x", 4, 4, TextureFormat("r8bogus"), TextureBinding); err == nil {
			t.Error("unknown format: want an error")
		}
		// An invalid usage for the format is caught by the error scope.
		if _, err := d.NewTexture("x", 4, 4, FormatRGBA8UnormSRGB, TextureStorageBinding); err == nil {
			t.Error("storage binding of an sRGB texture: want a validation error")
		} else {
			var de *DeviceError
			if !errors.As(err, &de) {
				t.Errorf("want a DeviceError, got %v", err)
			}
		}
		var s Surface
		s.d = d
		if err := s.DrawFrame(nil, nil, 0, [4]float64{}); err == nil {
			t.Error("DrawFrame before Configure: want an error")
		}
		if _, err := d.NewSurface(nil); err == nil {
			t.Error("NewSurface(nil): want an error")
		}
		if err := d.Check("texture errors"); err != nil {
			t.Errorf("errors leaked out of the scopes: %v", err)
		}
	})
}
