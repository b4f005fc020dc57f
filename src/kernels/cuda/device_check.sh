#!/usr/bin/env bash
# Builds and runs the CUDA backend tests on a machine with a GPU, then runs
# them under compute-sanitizer (memcheck, racecheck). Logs go to $OUT (or
# ./cuda-check-logs). Usage, from the repository root:
#   src/kernels/cuda/device_check.sh
# It builds with CMake when the project's Debian dependencies are present;
# otherwise (a bare CUDA image) it compiles just core + kernels + the test
# with nvcc/g++, against GoogleTest from .devdeps/ (headers + static libs
# copied from a machine that has them).
#
# It also runs cpu_isa_test on the machine's host CPU (cpu_isa.log): GPU
# hosts usually have AVX-512 VNNI, so the VNNI tiers of the cpu kernels,
# emulated on development machines, run NATIVELY there against the AVX2
# ones. It needs SIMDe headers: /usr/include/simde (libsimde-dev) or a copy
# in .devdeps/include/simde (carry .devdeps).
set -u -o pipefail
OUT=${OUT:-cuda-check-logs}
mkdir -p "$OUT"
{
  which nvcc cmake ninja g++; nvcc --version | tail -1; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  ls -d /usr/include/nlohmann /usr/include/gtest /usr/include/CLI 2>&1; pkg-config --exists libpcre2-8 && echo pcre2 ok
} 2>&1 | tee "$OUT/env.log"

BIN=""
SIMDE_DIR=/usr/include
[ -d "$SIMDE_DIR/simde" ] || SIMDE_DIR=$PWD/.devdeps/include
CMAKE_OK=""
if cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DFORMIGA_CUDA=ON \
     -DFORMIGA_SIMDE_INCLUDE_DIR="$SIMDE_DIR" >"$OUT/build.log" 2>&1 &&
   cmake --build build/dev -j16 --target cuda_backend_test >>"$OUT/build.log" 2>&1; then
  BIN=build/dev/src/kernels/cuda/cuda_backend_test
  CMAKE_OK=1
  echo "built with CMake" | tee -a "$OUT/build.log"
else
  echo "CMake build unavailable (see build.log); standalone nvcc build" | tee -a "$OUT/build.log"
  B=build/standalone; mkdir -p $B
  CXXF="-O2 -std=c++20 -Isrc -I.devdeps/include -DFORMIGA_HAVE_CUDA=1"
  NVF="-O2 -std=c++17 -Isrc --expt-relaxed-constexpr -lineinfo -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90"
  objs=()
  for f in src/core/dtype.cc src/core/quant.cc src/core/quant_k.cc src/core/quant_legacy.cc src/core/status.cc \
           src/kernels/ref_backend.cc src/kernels/backend.cc src/kernels/cuda/cuda_backend_test.cc; do
    o=$B/$(basename $f).o; g++ $CXXF -c $f -o $o >>"$OUT/build.log" 2>&1 & objs+=($o)
  done
  for f in src/kernels/cuda/*.cu; do
    o=$B/$(basename $f).o; nvcc $NVF -c $f -o $o >>"$OUT/build.log" 2>&1 & objs+=($o)
  done
  wait
  CUDA_LIB=$(dirname "$(which nvcc)")/../lib64
  [ -d "$CUDA_LIB" ] || CUDA_LIB=$(dirname "$(which nvcc)")/../lib
  g++ -o $B/cuda_backend_test "${objs[@]}" .devdeps/lib/libgtest_main.a .devdeps/lib/libgtest.a \
      -L"$CUDA_LIB" -lcudart_static -ldl -lrt -lpthread >>"$OUT/build.log" 2>&1 && BIN=$B/cuda_backend_test
fi
tail -20 "$OUT/build.log"
[ -n "$BIN" ] || { echo "BUILD FAILED"; exit 1; }

"$BIN" 2>&1 | tee "$OUT/test.log"; rc=$?
CS=$(which compute-sanitizer 2>/dev/null || echo /usr/local/cuda/bin/compute-sanitizer)
if [ -x "$CS" ]; then
  timeout 240 "$CS" --tool memcheck --leak-check full --error-exitcode 9 "$BIN" >"$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?" | tee -a "$OUT/memcheck.log"
  timeout 200 "$CS" --tool racecheck --error-exitcode 9 "$BIN" --gtest_filter='-*MatMulEveryWeightType*' >"$OUT/racecheck.log" 2>&1; echo "racecheck rc=$?" | tee -a "$OUT/racecheck.log"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY|PASSED|FAILED" "$OUT/memcheck.log" "$OUT/racecheck.log"
else
  echo "no compute-sanitizer"
fi

# The cpu backend's ISA tiers on this host CPU (see the header).
{
  grep -m1 "model name" /proc/cpuinfo
  grep -m1 -o -w -E "avx512f|avx512bw|avx512vl|avx512_vnni|avx_vnni" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
  ISA_BIN=""
  if [ -n "$CMAKE_OK" ]; then
    cmake --build build/dev -j16 --target cpu_isa_test >>"$OUT/build.log" 2>&1 && ISA_BIN=build/dev/src/kernels/cpu_isa_test
  else
    B=build/standalone-isa; mkdir -p $B
    CXXF="-O2 -std=c++20 -Isrc -I.devdeps/include -isystem $SIMDE_DIR"
    A2="-mavx2 -mfma -mf16c"
    objs=()
    for f in src/core/dtype.cc src/core/quant.cc src/core/quant_k.cc src/core/quant_legacy.cc src/core/status.cc \
             src/core/thread_pool.cc src/kernels/ref_backend.cc src/kernels/backend.cc src/kernels/cpu_backend.cc \
             src/kernels/cpu_isa.cc src/kernels/cpu_isa_test.cc; do
      o=$B/$(basename $f).o; g++ $CXXF -c $f -o $o & objs+=($o)
    done
    for f in src/kernels/cpu_*.cc src/kernels/isa/emulated_*.cc; do
      case $f in *_test.cc|*/cpu_backend.cc|*/cpu_isa.cc) continue;; esac
      o=$B/$(basename $f).o; g++ $CXXF $A2 -c $f -o $o & objs+=($o)
    done
    for f in src/kernels/isa/avx_vnni_*.cc; do o=$B/$(basename $f).o; g++ $CXXF $A2 -mavxvnni -c $f -o $o & objs+=($o); done
    for f in src/kernels/isa/avx512_vnni_*.cc; do
      o=$B/$(basename $f).o; g++ $CXXF $A2 -mavx512f -mavx512bw -mavx512vl -mavx512vnni -c $f -o $o & objs+=($o)
    done
    wait
    g++ -o $B/cpu_isa_test "${objs[@]}" .devdeps/lib/libgtest_main.a .devdeps/lib/libgtest.a -lpthread && ISA_BIN=$B/cpu_isa_test
  fi
  if [ -n "$ISA_BIN" ]; then "$ISA_BIN"; echo "cpu_isa_test rc=$?"; else echo "cpu_isa_test: BUILD FAILED"; fi
} 2>&1 | tee "$OUT/cpu_isa.log"
exit $rc
