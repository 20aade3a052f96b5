/* Releasable device memory for the parameter store's f32 values (the backend's
 * alloc_releasable, release_range and commit_range): one reserved address range backed by
 * chunks of 2 MiB (the allocation granularity when that is larger), each its own physical
 * allocation, so that bf16 ZeRO can unmap and free the chunks that hold only other ranks'
 * masters and map fresh ones again before a restore writes every value. CUDA's virtual memory
 * management (cuMemAddressReserve, cuMemCreate, cuMemMap, cuMemSetAccess; cuMemUnmap and
 * cuMemRelease) is driver API: its entry points come through the runtime
 * (cudaGetDriverEntryPointByVersion), so nothing links libcuda and the binaries still start on
 * a machine without a driver. A device without VMM, or VT_CUDA_NO_VMM=1, gets plain memory
 * from the pool instead (said once on stderr): release_range then refuses, and the store sets
 * the released masters to NaN. */
#include <cuda.h>
#include <cudaTypedefs.h>

#include "autograd/cuda/cuda_common.cuh"

#define VMM_CHUNK ((size_t)2 << 20)

/* The driver entry points, looked up once per process (they do not depend on the device). */
typedef struct {
  bool ok;
  PFN_cuDeviceGet_v2000 device_get;
  PFN_cuDeviceGetAttribute_v2000 attribute;
  PFN_cuMemGetAllocationGranularity_v10020 granularity;
  PFN_cuMemAddressReserve_v10020 reserve;
  PFN_cuMemAddressFree_v10020 address_free;
  PFN_cuMemCreate_v10020 create;
  PFN_cuMemRelease_v10020 release;
  PFN_cuMemMap_v10020 map;
  PFN_cuMemUnmap_v10020 unmap;
  PFN_cuMemSetAccess_v10020 set_access;
  PFN_cuGetErrorString_v6000 error_string;
} vmm_api;

static bool entry(const char *name, void **fn) {
  cudaDriverEntryPointQueryResult q;
#if CUDART_VERSION >= 12050
  cudaError_t e = cudaGetDriverEntryPointByVersion(name, fn, 12000, cudaEnableDefault, &q);
#else
  cudaError_t e = cudaGetDriverEntryPoint(name, fn, cudaEnableDefault, &q);
#endif
  if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !*fn) {
    (void)cudaGetLastError();
    return false;
  }
  return true;
}

static vmm_api load_api(void) {
  vmm_api a;
  memset(&a, 0, sizeof a);
  a.ok = entry("cuDeviceGet", (void **)&a.device_get) &&
         entry("cuDeviceGetAttribute", (void **)&a.attribute) &&
         entry("cuMemGetAllocationGranularity", (void **)&a.granularity) &&
         entry("cuMemAddressReserve", (void **)&a.reserve) &&
         entry("cuMemAddressFree", (void **)&a.address_free) &&
         entry("cuMemCreate", (void **)&a.create) && entry("cuMemRelease", (void **)&a.release) &&
         entry("cuMemMap", (void **)&a.map) && entry("cuMemUnmap", (void **)&a.unmap) &&
         entry("cuMemSetAccess", (void **)&a.set_access) &&
         entry("cuGetErrorString", (void **)&a.error_string);
  return a;
}

static const vmm_api *api(void) {
  static const vmm_api a = load_api(); /* C++ makes the first call's initialisation safe */
  return &a;
}

/* A failing driver call other than out of memory is a broken invariant, like VT_CUDA_CHECK. */
static void cu_check(CUresult r, const char *what, int line) {
  if (r == CUDA_SUCCESS) return;
  const char *msg = NULL;
  if (api()->error_string) api()->error_string(r, &msg);
  vt_cuda_die(__FILE__, line, what, msg ? msg : "unknown driver error");
}
#define CU_CHECK(call) cu_check((call), #call, __LINE__)

/* One releasable buffer: chunk i covers bytes [i chunk, (i + 1) chunk) of the reservation and
 * is backed by handle[i] while mapped[i]. */
struct vt_cuda_vmm {
  struct vt_cuda_vmm *next;
  CUdeviceptr base;
  size_t bytes, chunk, n; /* the size asked for, bytes per chunk, chunks reserved */
  CUmemAllocationProp prop;
  CUmemGenericAllocationHandle *handle;
  bool *mapped;
};

static bool vmm_wanted(const vt_cuda_inst *st, const char **why) {
  const char *off = getenv("VT_CUDA_NO_VMM");
  if (off && *off && strcmp(off, "0") != 0) {
    *why = "VT_CUDA_NO_VMM is set";
    return false;
  }
  if (!api()->ok) {
    *why = "the driver has no VMM entry points";
    return false;
  }
  CUdevice dev;
  int vmm = 0;
  CU_CHECK(api()->device_get(&dev, st->device));
  CU_CHECK(api()->attribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev));
  if (!vmm) *why = "CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED is 0";
  return vmm != 0;
}

/* Maps chunk i to a new physical allocation, readable and writable by the device. Returns
 * false when the device is out of memory (nothing is left behind). */
static bool map_chunk(struct vt_cuda_vmm *v, size_t i) {
  CUmemGenericAllocationHandle h;
  CUresult r = api()->create(&h, v->chunk, &v->prop, 0);
  if (r == CUDA_ERROR_OUT_OF_MEMORY) return false;
  CU_CHECK(r);
  CUdeviceptr at = v->base + i * v->chunk;
  CU_CHECK(api()->map(at, v->chunk, 0, h, 0));
  CUmemAccessDesc acc;
  memset(&acc, 0, sizeof acc);
  acc.location = v->prop.location;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  CU_CHECK(api()->set_access(at, v->chunk, &acc, 1));
  v->handle[i] = h;
  v->mapped[i] = true;
  return true;
}

/* Unmaps chunk i and frees its physical memory (work that used it must be done). */
static void unmap_chunk(struct vt_cuda_vmm *v, size_t i) {
  CU_CHECK(api()->unmap(v->base + i * v->chunk, v->chunk));
  CU_CHECK(api()->release(v->handle[i]));
  v->mapped[i] = false;
}

static void vmm_destroy(struct vt_cuda_vmm *v) {
  for (size_t i = 0; i < v->n; i++)
    if (v->mapped[i]) unmap_chunk(v, i);
  if (v->base) CU_CHECK(api()->address_free(v->base, v->n * v->chunk));
  free(v->handle);
  free(v->mapped);
  free(v);
}

void *vt_cuda_vmm_alloc(const vt_backend *be, size_t bytes) {
  vt_cuda_inst *st = vt_cuda_of(be);
  const char *why = NULL;
  if (!vmm_wanted(st, &why)) {
    static bool said;
    if (!said)
      fprintf(stderr,
              "cuda:%d: no virtual memory management (%s): the parameters' f32 values are one "
              "plain allocation, and f32 masters sharded by ZeRO are set to NaN, not released\n",
              st->device, why);
    said = true;
    return be->alloc(be, bytes);
  }
  struct vt_cuda_vmm *v = (struct vt_cuda_vmm *)calloc(1, sizeof *v);
  if (!v) return NULL;
  v->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  v->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  v->prop.location.id = st->device;
  CUdevice dev;
  int rdma = 0;
  CU_CHECK(api()->device_get(&dev, st->device));
  CU_CHECK(
      api()->attribute(&rdma, CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_WITH_CUDA_VMM_SUPPORTED, dev));
  v->prop.allocFlags.gpuDirectRDMACapable = rdma ? 1 : 0; /* NCCL may reach it over InfiniBand */
  size_t gran = 0;
  CU_CHECK(api()->granularity(&gran, &v->prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  v->chunk = (VMM_CHUNK + gran - 1) / gran * gran;
  v->bytes = bytes;
  v->n = bytes ? (bytes + v->chunk - 1) / v->chunk : 1;
  v->handle = (CUmemGenericAllocationHandle *)calloc(v->n, sizeof *v->handle);
  v->mapped = (bool *)calloc(v->n, sizeof *v->mapped);
  if (!v->handle || !v->mapped) {
    free(v->handle), free(v->mapped), free(v);
    return NULL;
  }
  CUresult r = api()->reserve(&v->base, v->n * v->chunk, v->chunk, 0, 0);
  if (r != CUDA_ERROR_OUT_OF_MEMORY) CU_CHECK(r);
  for (size_t i = 0; r == CUDA_SUCCESS && i < v->n; i++)
    if (!map_chunk(v, i)) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) { /* out of memory: what was mapped goes back */
    vmm_destroy(v);
    return NULL;
  }
  v->next = st->vmm;
  st->vmm = v;
  return (void *)v->base;
}

static struct vt_cuda_vmm *find(const vt_backend *be, const void *p) {
  for (struct vt_cuda_vmm *v = vt_cuda_of(be)->vmm; v; v = v->next)
    if ((void *)v->base == p) return v;
  return NULL;
}

bool vt_cuda_vmm_free(const vt_backend *be, void *p) {
  vt_cuda_inst *st = vt_cuda_of(be);
  for (struct vt_cuda_vmm **at = &st->vmm; *at; at = &(*at)->next) {
    struct vt_cuda_vmm *v = *at;
    if ((void *)v->base != p) continue;
    VT_CUDA_CHECK(cudaStreamSynchronize(st->stream)); /* queued work may still use it */
    *at = v->next;
    vmm_destroy(v);
    return true;
  }
  return false;
}

/* The chunks wholly inside [off, off + len) (the last one counts as whole when the range
 * reaches the end of the buffer: its tail holds nothing) are unmapped and freed. */
bool vt_cuda_vmm_release_range(const vt_backend *be, void *p, size_t off, size_t len) {
  struct vt_cuda_vmm *v = find(be, p);
  if (!v || off > v->bytes || len > v->bytes - off) return false;
  size_t a = (off + v->chunk - 1) / v->chunk;
  size_t b = off + len == v->bytes ? v->n : (off + len) / v->chunk;
  if (a >= b) return true;
  /* cuMemUnmap is documented as synchronous in most cases; the instance's queued work (an
   * optimizer step, a copy refresh) may read these chunks, so wait for it first */
  VT_CUDA_CHECK(cudaStreamSynchronize(VT_STREAM(be)));
  for (size_t i = a; i < b; i++)
    if (v->mapped[i]) unmap_chunk(v, i);
  return true;
}

/* Every chunk that [off, off + len) meets is mapped again, the new ones zeroed. */
bool vt_cuda_vmm_commit_range(const vt_backend *be, void *p, size_t off, size_t len) {
  struct vt_cuda_vmm *v = find(be, p);
  if (!v || !len) return true; /* plain memory was never released */
  size_t a = off / v->chunk, b = (off + len + v->chunk - 1) / v->chunk;
  if (b > v->n) b = v->n;
  bool ok = true;
  for (size_t i = a; i < b && ok; i++) {
    if (v->mapped[i]) continue;
    ok = map_chunk(v, i);
    if (ok)
      VT_CUDA_CHECK(cudaMemsetAsync((void *)(v->base + i * v->chunk), 0, v->chunk, VT_STREAM(be)));
  }
  VT_CUDA_CHECK(cudaStreamSynchronize(VT_STREAM(be))); /* zeros before any other stream reads */
  return ok;
}
