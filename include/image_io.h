/* image_io.h: digit images in and out. Any PNG, JPEG or PGM file becomes a 28 x 28 image
 * prepared the way MNIST's were (light digit on black, longest side 20 px, centred by its
 * centre of mass); predictions are drawn as a labelled grid and written as PNG. Uses stb_image
 * and stb_image_write. */
#ifndef CLTRAIN_IMAGE_IO_H
#define CLTRAIN_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

#define MNIST_SIDE 28   /* canvas */
#define MNIST_BOX 20    /* the digit's longest side inside it */

/* The prediction grid: GRID_COLS cells a row; a cell holds one image scaled GRID_SCALE times
 * with its labels under it. */
#define GRID_COLS 10
#define GRID_SCALE 2
#define GRID_CELL_W 64
#define GRID_CELL_H 94

/* Reads path as grey pixels (*w x *h, row-major, malloc'd); transparency is flattened onto a
 * background that contrasts with the ink. Returns NULL with a one-line message naming the file
 * in err when it cannot be read or is not a PNG, JPEG or PGM (binary) image. */
uint8_t *image_load_grey(const char *path, int *w, int *h, char *err, size_t errlen);

/* grey is w x h; out is MNIST_SIDE x MNIST_SIDE. Inverts a dark-on-light image, removes the
 * background level, crops to the ink, scales the longest side to MNIST_BOX keeping the aspect
 * (area average down, bilinear up) and centres by the centre of mass. Returns 0, or -1 when
 * the image holds no ink (blank or too little contrast). */
int image_to_mnist(const uint8_t *grey, int w, int h, uint8_t *out);

/* image_load_grey then image_to_mnist; -1 with a message naming the file. */
int image_load_digit(const char *path, uint8_t *out, char *err, size_t errlen);

/* Writes w x h pixels of comp channels (1 grey, 3 RGB) as PNG, to a temporary name in the same
 * folder, then renamed. Returns 0, or -1 with a message in err. */
int image_write_png(const char *path, const uint8_t *px, int w, int h, int comp, char *err,
                    size_t errlen);

/* The grid's size in pixels for n images. */
void image_grid_size(size_t n, int *w, int *h);

/* Draws n images (side x side each, one after another) in a grid, each with "P<pred>" and,
 * when truth is not NULL, "T<true>" on a second line under it: the class's name from names
 * (NULL: its number), cut to the cell's width. A wrong prediction gets a red border and a red
 * label. Returns malloc'd RGB pixels, *w x *h (image_grid_size). */
uint8_t *image_prediction_grid(const uint8_t *pixels, int side, size_t n, const uint8_t *pred,
                               const uint8_t *truth, const char *const *names, int *w, int *h);

#endif
