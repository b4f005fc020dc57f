// Reductions over a whole logits row, for the sampler: the argmax, the sum
// of exponentials behind a log-softmax, and the top k. A decode step's sampling reads
// vocab_size floats (262,144 for Gemma-3); written as plain loops these two
// took 8.5 % of a Gemma-3-270M decode step and 5 % of SmolLM2's on 2 threads
// (`formiga bench --profile`, "(outside ops)"), all on one thread; the
// default sampler's top-40 took 1.1 ms of every Gemma-3 token.
//
// Each has an AVX2/FMA body chosen at run time (this library is compiled for
// baseline x86-64) and a portable one; they agree up to the rounding stated
// below, and the reference twins in vec_math_test.cc check both.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace formiga {

// Index of the largest value (the first one on ties); NaNs never win. 0 for
// n <= 0 or when every value is NaN or -inf.
int64_t ArgMax(const float* x, int64_t n);

// Σ exp(x[i] - shift) in double, for shift >= every x[i] (the row's max):
// each term within 2e-7 relative of std::exp's, terms below exp(-87) (under
// 1e-38) counted as 0.
double SumExpShifted(const float* x, int64_t n, float shift);

// The k largest values as (value, index), best first (larger value, then
// smaller index: the sampler's order); NaN and -inf never enter. Fewer than
// k when fewer values qualify. One pass: a vector compare against the k-th
// best so far rejects most values without touching the heap.
void TopK(const float* x, int64_t n, int k, std::vector<std::pair<float, int32_t>>* out);

// The portable bodies (the tests compare the dispatched ones against them).
int64_t ArgMaxScalar(const float* x, int64_t n);
double SumExpShiftedScalar(const float* x, int64_t n, float shift);
void TopKScalar(const float* x, int64_t n, int k, std::vector<std::pair<float, int32_t>>* out);

}  // namespace formiga
