// The fallback MakeCudaBackend for builds without CUDA (FORMIGA_CUDA=OFF or
// no nvcc): callers get a clear Unsupported instead of a link error, so the
// CLI and tests can ask for a GPU unconditionally.
#include "kernels/backend.h"

namespace formiga {

#ifndef FORMIGA_HAVE_CUDA
Result<std::unique_ptr<Backend>> MakeCudaBackend(int device) {
  return Status::Unsupported("formiga was built without CUDA (device " + std::to_string(device) +
                             " requested): rebuild with nvcc on the PATH and -DFORMIGA_CUDA=ON");
}
#endif

}  // namespace formiga
