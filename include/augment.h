/* augment.h: training-time distortions of the images (--augment SPEC): random shifts,
 * rotations, scalings and Simard et al.'s (2003) elastic distortions, resampled bilinearly.
 * Every draw comes from the counter-based generator (rng.h) as a function of (seed, stream,
 * the image's position in the epoch), so runs are deterministic and resumes bit-identical.
 *
 * The transform of one image (w x h pixels, centre c = ((w-1)/2, (h-1)/2)), from uniforms
 * u0..u3 in [0, 1) at counters base + 0..3, base = position * augment_counters(w, h):
 *   tx = shift (2 u0 - 1), ty = shift (2 u1 - 1)          pixels
 *   theta = rotate (2 u2 - 1) pi / 180                     radians
 *   s = 1 + scale (2 u3 - 1)
 * and, with elastic alpha:sigma, a displacement field: per pixel p two uniforms in [-1, 1]
 * (counters base + 4 + 2p, base + 5 + 2p), each component blurred by a normalised Gaussian of
 * standard deviation sigma, radius ceil(3 sigma), zero outside the image, times alpha.
 * Output pixel (x, y) reads the source at
 *   c + R(-theta) ((x, y) - c - (tx, ty)) / s + alpha (gx, gy)(x, y)
 * bilinearly (pixels outside the image are 0), rounded to the nearest uint8. All strengths
 * zero is the identity, to the bit. */
#ifndef CLTRAIN_AUGMENT_H
#define CLTRAIN_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    float shift;            /* pixels */
    float rotate;           /* degrees */
    float scale;            /* fraction */
    float elastic_alpha;    /* pixels of displacement per unit of blurred field */
    float elastic_sigma;    /* pixels */
} augment_spec;

/* Accepted keys and ranges, as the error messages and --help list them. */
#define AUGMENT_ACCEPTED "shift=PIXELS (0-64), rotate=DEGREES (0-180), scale=FRACTION (0-0.9), " \
    "elastic=ALPHA:SIGMA (alpha 0-1000, sigma 0.5-20), comma-separated, e.g. " \
    "shift=2,rotate=10,scale=0.1,elastic=34:4"

/* Parses "shift=2,rotate=10,scale=0.1,elastic=34:4" (any subset, any order; "none" for no
 * distortion). Returns 0, or -1 with a one-line reason in err. */
int augment_parse(const char *text, augment_spec *out, char *err, size_t errlen);
/* The canonical text of a spec ("none" when inactive). */
void augment_format(const augment_spec *s, char *buf, size_t len);
/* True when any strength is nonzero. */
bool augment_active(const augment_spec *s);
bool augment_equal(const augment_spec *a, const augment_spec *b);

/* Generator counters one image uses: 4 + 2 w h. */
uint64_t augment_counters(int width, int height);
/* Gaussian radius for sigma: ceil(3 sigma), 0 without elastic. */
int augment_radius(const augment_spec *s);

/* The plain-C reference (float64 arithmetic): dst[m x w*h] = image i of src resampled with the
 * transform of position pos0 + i, where image i is src row idx[i] (idx non-NULL) or row i. */
void augment_reference(const uint8_t *src, const uint32_t *idx, int m, int width, int height,
                       const augment_spec *s, uint64_t seed, uint64_t stream, uint64_t pos0,
                       uint8_t *dst);

#endif
