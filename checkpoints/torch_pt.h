/* torch_pt: the tensors of a PyTorch checkpoint (torch.save since PyTorch 1.6: a zip archive
 * holding NAME/data.pkl, one NAME/data/KEY entry per storage, NAME/byteorder and NAME/version),
 * read without running anything. The zip container is libzip's; the pickle is read by a
 * restricted unpickler of our own: the protocol 2-4 opcodes torch.save emits, dicts, lists,
 * tuples, numbers and strings, and only these globals: collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter and the torch.*Storage
 * types of persistent_load records ('storage', TYPE, KEY, LOCATION, NUMEL). Every other global,
 * and a REDUCE or NEWOBJ of anything else, is refused (a security boundary: nothing is
 * executed). The legacy format (before 1.6, or _use_new_zipfile_serialization=False) is
 * refused with a message saying so.
 *
 * Tensors are named by their path of string keys through nested dicts ("generator.ups.0.weight_g"
 * for the codec's {generator: {...}}); tensors inside lists or tuples (an optimizer's state)
 * have no name and are left out. Strided, offset and shared-storage views are read as torch
 * reads them. torch_pt_write_safetensors turns a checkpoint into a safetensors file (floats in
 * f32, integers in i64), which the importer then checks and converts like any other. */
#ifndef VT_TORCH_PT_H
#define VT_TORCH_PT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"

#define TORCH_PT_MAX_DIMS 8

/* Element types of torch storages. */
typedef enum {
  TORCH_PT_F32,
  TORCH_PT_F64,
  TORCH_PT_F16,
  TORCH_PT_BF16,
  TORCH_PT_I64,
  TORCH_PT_I32,
  TORCH_PT_I16,
  TORCH_PT_I8,
  TORCH_PT_U8,
  TORCH_PT_BOOL,
} torch_pt_dtype;

typedef struct {
  char *key;            /* the storage's entry: NAME/data/KEY */
  torch_pt_dtype dtype; /* from its torch.*Storage type */
  int64_t numel;        /* elements the record claims (checked against the entry's size) */
  int64_t entry;        /* libzip index of the entry */
} torch_pt_storage;

typedef struct {
  char *name; /* dotted dict path */
  int storage;
  int64_t offset; /* in elements, into the storage */
  int ndim;
  int64_t shape[TORCH_PT_MAX_DIMS];
  int64_t stride[TORCH_PT_MAX_DIMS];
  int64_t numel;
} torch_pt_tensor;

typedef struct {
  char *path; /* for messages */
  void *zip;  /* zip_t */
  char *prefix;
  torch_pt_storage *storages;
  int n_storages;
  torch_pt_tensor *tensors; /* in the order of the pickle */
  int n;
  char *sd_prefix;      /* "model.", "state_dict." or "": where the state dict is */
  unsigned char *cache; /* the last storage read */
  int cache_storage;
} torch_pt_file;

/* Opens a torch.save file and reads its pickle: every tensor record checked (dtype, shape,
 * stride and offset inside its storage, the storage entry present and long enough). Returns 0,
 * or -1 with err naming the file, the entry or pickle offset and what was expected; f is then
 * empty and torch_pt_close is a no-op. */
int torch_pt_open(torch_pt_file *f, const char *path, char *err, size_t err_len);
/* The same on a buffer in memory (not copied: it must outlive f); label names it in errors. */
int torch_pt_open_mem(torch_pt_file *f, const void *buf, size_t len, const char *label, char *err,
                      size_t err_len);
void torch_pt_close(torch_pt_file *f);

/* The tensor called name, or NULL. */
const torch_pt_tensor *torch_pt_find(const torch_pt_file *f, const char *name);

/* Reads tensor t into dst (t->numel elements, contiguous, row-major) as VT_F32 (float storages
 * converted; integers refused) or VT_I64 (integer and bool storages; floats refused). Returns
 * 0 or -1 with err naming the tensor and the entry. */
int torch_pt_read(torch_pt_file *f, const torch_pt_tensor *t, vt_dtype to, void *dst, char *err,
                  size_t err_len);

/* "F32", "BF16", ... as safetensors spells them; bytes per element; whether a float type. */
const char *torch_pt_dtype_name(torch_pt_dtype t);
size_t torch_pt_dtype_size(torch_pt_dtype t);
bool torch_pt_is_float(torch_pt_dtype t);

/* Which tensors to write, by the name they are written under (NULL: all). */
typedef bool (*torch_pt_select_fn)(const char *name, void *arg);

/* Writes the tensors of the state dict (those named under f->sd_prefix, named without it) that
 * select keeps to the safetensors file out (atomically): floats as F32, integers as I64. Weight
 * norm of torch.nn.utils.parametrizations (NAME.parametrizations.weight.original0/1) is written
 * under the names of torch.nn.utils.weight_norm (NAME.weight_g/NAME.weight_v). *n_out counts
 * the tensors written, *n_skipped those select left out (each when not NULL). Returns 0 or -1
 * with err (no tensor at all is an error). */
int torch_pt_write_safetensors(torch_pt_file *f, const char *out, torch_pt_select_fn select,
                               void *arg, int *n_out, int *n_skipped, char *err, size_t err_len);

#endif
