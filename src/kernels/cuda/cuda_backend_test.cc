// Every op of the CUDA backend against the ref backend on random inputs,
// inputs uploaded and outputs downloaded through the Backend memory API.
// Label `gpu`: without a CUDA device each test skips saying "no CUDA
// device" (and only then; any other failure to start the backend fails).
//
// Tolerances (max |cuda - ref| / rms(ref) unless stated):
//   MatMul, every type  2e-5   weights decoded exactly, f32 activations,
//                              f32 sums of up to 2048 products vs double.
//   Attention           3e-5   f32 scores and expf vs double (as cpu).
//   RmsNorm, LayerNorm, 1e-5   f32 sums vs double; Rope angles in double.
//   Rope
//   SiluMul, Gelu*,     1e-5   CUDA's expf/tanhf/erff (a few ulp).
//   SoftCap
//   GetRows, StoreKv,   exact  the same f32/f16 operations, no FMA
//   Add, AddBias,              contraction (the decoders use __fmul_rn).
//   Scale, CopyRows
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/quant.h"
#include "kernels/backend.h"
#include "kernels/cpu_test_util.h"

namespace formiga {
namespace {

using testing::RandomVector;
using testing::RelMaxErr;

// The CUDA backend on GPU 0, or skip when (and only when) there is no GPU.
#define FORMIGA_REQUIRE_CUDA(var)                                                     \
  auto var##_or = MakeCudaBackend(0);                                                 \
  if (!var##_or.ok() && var##_or.status().IsUnsupported() &&                          \
      var##_or.status().message().rfind("no CUDA device", 0) == 0) {                  \
    GTEST_SKIP() << var##_or.status().message();                                      \
  }                                                                                   \
  ASSERT_TRUE(var##_or.ok()) << var##_or.status().ToString();                         \
  Backend& var = *var##_or.value()

// Device memory holding a copy of a host vector; freed with the backend.
class Dev {
 public:
  Dev(Backend& be, size_t bytes) : be_(&be) {
    auto p = be.Alloc(bytes);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (p.ok()) ptr_ = p.value();
  }
  template <class T>
  Dev(Backend& be, const std::vector<T>& v) : Dev(be, v.size() * sizeof(T)) {
    if (ptr_ != nullptr) {
      EXPECT_TRUE(be.CopyToDevice(ptr_, v.data(), v.size() * sizeof(T)).ok());
    }
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  Dev(Dev&& o) noexcept : be_(o.be_), ptr_(o.ptr_) { o.ptr_ = nullptr; }
  ~Dev() {
    if (ptr_ != nullptr) be_->Free(ptr_);
  }
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  float* f() const { return as<float>(); }

 private:
  Backend* be_;
  void* ptr_ = nullptr;
};

template <class T>
std::vector<T> Download(Backend& be, const Dev& d, size_t n) {
  std::vector<T> out(n);
  Status s = be.CopyToHost(out.data(), d.as<T>(), n * sizeof(T));
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

using testing::MakeWeights;
const auto& kTypes = testing::kWeightTypes;

TEST(CudaBackendTest, NoDeviceOrBadIndexIsAnErrorNotACrash) {
  auto be = MakeCudaBackend(1 << 20);
  ASSERT_FALSE(be.ok());
  EXPECT_TRUE(be.status().IsUnsupported() || be.status().code() == StatusCode::kOutOfRange) << be.status().ToString();
  std::printf("MakeCudaBackend(1<<20): %s\n", be.status().ToString().c_str());
}

TEST(CudaBackendTest, MemoryRoundTrip) {
  FORMIGA_REQUIRE_CUDA(be);
  EXPECT_FALSE(be.IsHost());
  const auto v = RandomVector(1001, 1);
  Dev d(be, v);
  EXPECT_EQ(Download<float>(be, d, v.size()), v);
  EXPECT_TRUE(be.Synchronize().ok());
  // The host defaults (ref) behave the same way.
  auto ref = MakeRefBackend();
  EXPECT_TRUE(ref->IsHost());
  auto p = ref->Alloc(v.size() * 4);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(ref->CopyToDevice(p.value(), v.data(), v.size() * 4).ok());
  EXPECT_EQ(0, std::memcmp(p.value(), v.data(), v.size() * 4));
  ref->Free(p.value());
}

void CheckMatMul(Backend& be, Backend& ref_be, DType type, int64_t N, int64_t C, int64_t T, double* worst) {
  const std::string what = std::string(DTypeName(type)) + " N=" + std::to_string(N) + " C=" + std::to_string(C) +
                           " T=" + std::to_string(T);
  const auto seed = static_cast<uint32_t>(N * 7919 + C * 31 + T);
  const std::vector<uint8_t> w = MakeWeights(type, N, C, seed);
  const size_t rb = DTypeRowBytes(type, static_cast<uint64_t>(C));
  const std::vector<float> x = RandomVector(static_cast<size_t>(T * C), seed + 1);
  std::vector<float> ref(static_cast<size_t>(T * N));
  ASSERT_TRUE(ref_be.MatMul(WeightView{type, w.data(), C, N, rb}, x.data(), ref.data(), T).ok()) << what;
  Dev dw(be, w), dx(be, x), dy(be, std::vector<float>(ref.size(), -1.0f));
  ASSERT_TRUE(be.MatMul(WeightView{type, dw.as<void>(), C, N, rb}, dx.f(), dy.f(), T).ok()) << what;
  const auto got = Download<float>(be, dy, ref.size());
  const double err = RelMaxErr(got, ref);
  EXPECT_LE(err, 2e-5) << what;
  *worst = std::max(*worst, err);
}

TEST(CudaBackendTest, MatMulEveryWeightTypeMatchesRef) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  const int64_t kCs[] = {32, 64, 96, 256, 288, 576, 640, 2048};
  const int64_t kTs[] = {1, 2, 3, 7, 8, 9, 16, 33, 64};
  const int64_t kNs[] = {1, 5, 17, 33, 67};
  for (DType type : kTypes) {
    const int64_t block = GetDTypeTraits(type).block_size;
    double worst = 0;
    int i = 0;
    for (int64_t C : kCs) {
      if (C % block != 0) continue;
      for (int64_t T : kTs) {
        const int64_t N = C >= 2048 ? 17 : kNs[i++ % 5];
        CheckMatMul(be, *ref_be, type, N, C, T, &worst);
      }
    }
    if (block == 1) {
      for (int64_t C : {1, 7, 9, 15, 17, 31, 33}) CheckMatMul(be, *ref_be, type, 9, C, 5, &worst);
    }
    std::printf("%-5s worst max|cuda-ref|/rms(ref) = %.3g (tol 2e-5)\n", DTypeName(type), worst);
  }
}

TEST(CudaBackendTest, MatMulTokenResultsDoNotDependOnTheBatch) {
  FORMIGA_REQUIRE_CUDA(be);
  for (DType type : {DType::kF16, DType::kQ4_1, DType::kQ6_K}) {
    const int64_t N = 37, C = 512, T = 11;
    const auto w = MakeWeights(type, N, C, 5);
    const size_t rb = DTypeRowBytes(type, C);
    const auto x = RandomVector(static_cast<size_t>(T * C), 6);
    Dev dw(be, w), dx(be, x), dall(be, static_cast<size_t>(T * N) * 4), done(be, static_cast<size_t>(N) * 4);
    const WeightView view{type, dw.as<void>(), C, N, rb};
    ASSERT_TRUE(be.MatMul(view, dx.f(), dall.f(), T).ok());
    const auto all = Download<float>(be, dall, static_cast<size_t>(T * N));
    for (int64_t t = 0; t < T; ++t) {
      ASSERT_TRUE(be.MatMul(view, dx.f() + t * C, done.f(), 1).ok());
      const auto one = Download<float>(be, done, static_cast<size_t>(N));
      EXPECT_EQ(0, std::memcmp(one.data(), all.data() + t * N, one.size() * 4)) << DTypeName(type) << " token " << t;
    }
  }
}

TEST(CudaBackendTest, MatMulRejectsUnsupportedTypesAndBadWidths) {
  FORMIGA_REQUIRE_CUDA(be);
  Dev w(be, 1024), x(be, 1024), y(be, 16);
  Status st = be.MatMul(WeightView{DType::kIQ4_NL, w.as<void>(), 32, 1, 18}, x.f(), y.f(), 1);
  EXPECT_TRUE(st.IsUnsupported()) << st.ToString();
  EXPECT_NE(st.message().find("iq4_nl"), std::string::npos) << st.message();
  st = be.MatMul(WeightView{DType::kQ4_0, w.as<void>(), 48, 1, 36}, x.f(), y.f(), 1);
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_TRUE(be.Synchronize().ok());
}

TEST(CudaBackendTest, GetRowsBitExactEveryTypeAndRejectsBadIds) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  const int64_t V = 50, C = 512;
  for (DType type : kTypes) {
    const auto data = MakeWeights(type, V, C, 11);
    const size_t rb = DTypeRowBytes(type, C);
    const std::vector<int32_t> ids = {3, 49, 0, 3, 17};
    std::vector<float> ref(ids.size() * C);
    ASSERT_TRUE(ref_be->GetRows(WeightView{type, data.data(), C, V, rb}, ids.data(), 5, ref.data()).ok());
    Dev dd(be, data), di(be, ids), dy(be, ref.size() * 4);
    const WeightView view{type, dd.as<void>(), C, V, rb};
    ASSERT_TRUE(be.GetRows(view, di.as<int32_t>(), 5, dy.f()).ok());
    EXPECT_EQ(Download<float>(be, dy, ref.size()), ref) << DTypeName(type);
    const std::vector<int32_t> bad = {2, 50};
    Dev db(be, bad);
    Status st = be.GetRows(view, db.as<int32_t>(), 2, dy.f());
    EXPECT_EQ(st.code(), StatusCode::kOutOfRange) << st.ToString();
  }
}

TEST(CudaBackendTest, NormsAndRopeMatchRef) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  for (int64_t T : {1, 2, 7, 64}) {
    for (int64_t C : {1, 7, 64, 255, 576, 1000, 4099}) {
      const auto x = RandomVector(static_cast<size_t>(T * C), 3, 2.0f);
      const auto w = RandomVector(static_cast<size_t>(C), 4);
      const auto bias = RandomVector(static_cast<size_t>(C), 5);
      Dev dx(be, x), dw(be, w), db(be, bias), dy(be, x.size() * 4);
      std::vector<float> ref(x.size());
      const std::string what = "T=" + std::to_string(T) + " C=" + std::to_string(C);
      for (bool with_w : {true, false}) {
        be.RmsNorm(dx.f(), with_w ? dw.f() : nullptr, dy.f(), T, C, 1e-6f);
        ref_be->RmsNorm(x.data(), with_w ? w.data() : nullptr, ref.data(), T, C, 1e-6f);
        EXPECT_LE(RelMaxErr(Download<float>(be, dy, x.size()), ref), 1e-5) << "RmsNorm " << what;
        be.LayerNorm(dx.f(), with_w ? dw.f() : nullptr, with_w ? db.f() : nullptr, dy.f(), T, C, 1e-5f);
        ref_be->LayerNorm(x.data(), with_w ? w.data() : nullptr, with_w ? bias.data() : nullptr, ref.data(), T, C,
                          1e-5f);
        EXPECT_LE(RelMaxErr(Download<float>(be, dy, x.size()), ref), 1e-5) << "LayerNorm " << what;
      }
      // In place, as the per-head q/k norms run.
      be.RmsNorm(dx.f(), dw.f(), dy.f(), T, C, 1e-6f);
      const auto out_of_place = Download<float>(be, dy, x.size());
      be.RmsNorm(dx.f(), dw.f(), dx.f(), T, C, 1e-6f);
      EXPECT_EQ(Download<float>(be, dx, x.size()), out_of_place) << what;
    }
  }
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f, 8.0f, 1.0f, 1.5f, 3.0f, 1.0f,
                                      1.0f, 1.0f, 2.0f, 2.0f, 1.0f, 1.0f, 1.0f, 1.0f};
  Dev dfactors(be, factors);
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int64_t D : {32, 64, 80, 128, 256}) {
      for (int64_t n_rot : {D, D / 2}) {
        const int64_t T = 9, H = 5;
        const std::vector<int32_t> pos = {0, 1, 2, 17, 100, 1000, 4095, 30000, 131071};
        const auto x = RandomVector(static_cast<size_t>(T * H * D), 6);
        RopeParams p{style, n_rot, 10000.0f, 0.5f, n_rot == 32 ? factors.data() : nullptr};
        auto ref = x;
        ref_be->Rope(ref.data(), pos.data(), T, H, D, p);
        Dev dx(be, x), dp(be, pos);
        p.freq_factors = n_rot == 32 ? dfactors.f() : nullptr;
        be.Rope(dx.f(), dp.as<int32_t>(), T, H, D, p);
        EXPECT_LE(RelMaxErr(Download<float>(be, dx, x.size()), ref), 1e-5)
            << "Rope D=" << D << " n_rot=" << n_rot << " neox=" << (style == RopeStyle::kNeox);
      }
    }
  }
  EXPECT_TRUE(be.Synchronize().ok());
}

TEST(CudaBackendTest, ElementwiseOpsMatchRef) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  for (int64_t n : {1, 7, 8, 33, 1000, 70001, 5000011}) {
    const auto a = RandomVector(static_cast<size_t>(n), 7, 3.0f);
    auto b = RandomVector(static_cast<size_t>(n), 8, 3.0f);
    if (n > 8) b[3] = 200.0f, b[5] = -200.0f;  // saturated exp/tanh
    Dev da(be, a), db(be, b), dy(be, a.size() * 4);
    std::vector<float> ref(a.size());
    const std::string what = "n=" + std::to_string(n);
    const auto got = [&] { return Download<float>(be, dy, a.size()); };
    be.SiluMul(db.f(), da.f(), dy.f(), n);
    ref_be->SiluMul(b.data(), a.data(), ref.data(), n);
    EXPECT_LE(RelMaxErr(got(), ref), 1e-5) << "SiluMul " << what;
    be.GeluMul(db.f(), da.f(), dy.f(), n);
    ref_be->GeluMul(b.data(), a.data(), ref.data(), n);
    EXPECT_LE(RelMaxErr(got(), ref), 1e-5) << "GeluMul " << what;
    for (bool tanh_approx : {false, true}) {
      be.Gelu(db.f(), dy.f(), n, tanh_approx);
      ref_be->Gelu(b.data(), ref.data(), n, tanh_approx);
      EXPECT_LE(RelMaxErr(got(), ref), 1e-5) << "Gelu tanh=" << tanh_approx << " " << what;
    }
    be.SoftCap(db.f(), dy.f(), n, 30.0f);
    ref_be->SoftCap(b.data(), ref.data(), n, 30.0f);
    EXPECT_LE(RelMaxErr(got(), ref), 1e-5) << "SoftCap " << what;
    be.Add(da.f(), db.f(), dy.f(), n);
    ref_be->Add(a.data(), b.data(), ref.data(), n);
    EXPECT_EQ(got(), ref) << "Add " << what;
    ref = a;
    be.Scale(da.f(), 0.37f, n);
    ref_be->Scale(ref.data(), 0.37f, n);
    EXPECT_EQ(Download<float>(be, da, a.size()), ref) << "Scale " << what;
  }
  for (int64_t T : {1, 3, 200}) {
    const int64_t C = 333;
    const auto x = RandomVector(static_cast<size_t>(T * C), 9);
    const auto bias = RandomVector(static_cast<size_t>(C), 10);
    std::vector<float> ref(x.size());
    Dev dx(be, x), db(be, bias), dy(be, static_cast<size_t>(std::max<int64_t>(T, 3) * C) * 4);
    be.AddBias(dx.f(), db.f(), dy.f(), T, C);
    ref_be->AddBias(x.data(), bias.data(), ref.data(), T, C);
    EXPECT_EQ(Download<float>(be, dy, x.size()), ref) << "AddBias T=" << T;
    const std::vector<int32_t> rows = {static_cast<int32_t>(T - 1), 0, static_cast<int32_t>(T / 2)};
    Dev dr(be, rows);
    ref.resize(static_cast<size_t>(3 * C));
    be.CopyRows(dx.f(), dr.as<int32_t>(), 3, C, dy.f());
    ref_be->CopyRows(x.data(), rows.data(), 3, C, ref.data());
    EXPECT_EQ(Download<float>(be, dy, ref.size()), ref) << "CopyRows T=" << T;
  }
  EXPECT_TRUE(be.Synchronize().ok());
}

TEST(CudaBackendTest, StoreKvMatchesRefBitForBit) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  for (DType type : {DType::kF16, DType::kF32}) {
    for (int64_t T : {1, 5, 300}) {
      const int64_t KH = 3, D = 20;
      std::vector<int64_t> slots(static_cast<size_t>(T));
      std::iota(slots.begin(), slots.end(), 0);
      std::shuffle(slots.begin(), slots.end(), std::mt19937(7));
      const auto k = RandomVector(static_cast<size_t>(T * KH * D), 1, 100.0f);
      const auto v = RandomVector(k.size(), 2, 1e-5f);  // f16 subnormals too
      const size_t bytes = k.size() * (type == DType::kF16 ? 2 : 4);
      std::vector<uint8_t> rk(bytes), rv(bytes);
      const KvLayout layout{4, KH, D, type};
      AttentionBatch hb{T, nullptr, nullptr, nullptr, slots.data()};
      ref_be->StoreKv(k.data(), v.data(), hb, KvLayerView{rk.data(), rv.data(), layout});
      Dev dk(be, k), dv(be, v), ds(be, slots), ck(be, bytes), cv(be, bytes);
      AttentionBatch db{T, nullptr, nullptr, nullptr, ds.as<int64_t>()};
      be.StoreKv(dk.f(), dv.f(), db, KvLayerView{ck.as<void>(), cv.as<void>(), layout});
      EXPECT_EQ(Download<uint8_t>(be, ck, bytes), rk) << DTypeName(type) << " T=" << T;
      EXPECT_EQ(Download<uint8_t>(be, cv, bytes), rv) << DTypeName(type) << " T=" << T;
    }
  }
}

// The device copy of a testing::PagedSetup (cpu_test_util.h): K/V, the
// block tables, then the device array of device table pointers.
struct DevicePaged {
  std::vector<Dev> tables;
  Dev k, v, table_ptrs, positions, seq_of, slots, q;
  AttentionBatch batch;

  DevicePaged(Backend& be, const testing::PagedSetup& s)
      : k(be, s.k), v(be, s.v), table_ptrs(be, s.tables.size() * sizeof(void*)), positions(be, s.positions),
        seq_of(be, s.seq_of), slots(be, s.slots), q(be, s.q) {
    std::vector<const int32_t*> ptrs;
    for (const auto& t : s.tables) {
      tables.emplace_back(be, t);
      ptrs.push_back(tables.back().as<int32_t>());
    }
    EXPECT_TRUE(be.CopyToDevice(table_ptrs.as<void>(), ptrs.data(), ptrs.size() * sizeof(void*)).ok());
    batch = AttentionBatch{s.batch.n_tokens, positions.as<int32_t>(), seq_of.as<int32_t>(),
                           table_ptrs.as<const int32_t*>(), slots.as<int64_t>()};
  }
};

TEST(CudaBackendTest, AttentionMatchesRef) {
  FORMIGA_REQUIRE_CUDA(be);
  auto ref_be = MakeRefBackend();
  struct Case {
    int64_t H, KH, D, window;
    float softcap;
    DType type;
    int64_t bs;
  };
  const Case cases[] = {
      {4, 4, 64, 0, 0.0f, DType::kF16, 4},   {9, 3, 64, 0, 0.0f, DType::kF16, 16},
      {8, 2, 128, 0, 0.0f, DType::kF32, 16}, {4, 1, 256, 0, 0.0f, DType::kF16, 16},
      {6, 2, 64, 5, 0.0f, DType::kF16, 4},   {4, 4, 128, 70, 0.0f, DType::kF32, 16},
      {8, 2, 64, 0, 50.0f, DType::kF16, 16}, {3, 3, 80, 0, 1.5f, DType::kF32, 4},
      {4, 1, 20, 9, 0.0f, DType::kF16, 4},   {2, 1, 1, 0, 0.0f, DType::kF32, 1},
      {16, 8, 32, 512, 0.0f, DType::kF16, 32},
  };
  uint32_t seed = 1;
  for (const Case& c : cases) {
    // Three sequences: a long prefill chunk, a decode token, a middle chunk.
    testing::PagedSetup s({150, 37, 66}, {33, 1, 7}, c.H, c.KH, c.D, c.type, *ref_be, seed++, c.bs);
    for (float& x : s.q) x *= 3.0f;  // spreads the softmax (rescaling across chunks)
    AttentionParams p{c.H, c.KH, c.D, 1.0f / std::sqrt(static_cast<float>(c.D)), c.softcap, c.window};
    std::vector<float> ref(s.q.size());
    ref_be->Attention(s.q.data(), KvLayerView{s.k.data(), s.v.data(), s.layout}, s.batch, p, ref.data());
    DevicePaged d(be, s);
    Dev out(be, ref.size() * 4);
    be.Attention(d.q.f(), KvLayerView{d.k.as<void>(), d.v.as<void>(), s.layout}, d.batch, p, out.f());
    const std::string what = "H=" + std::to_string(c.H) + " KH=" + std::to_string(c.KH) +
                             " D=" + std::to_string(c.D) + " window=" + std::to_string(c.window) +
                             " softcap=" + std::to_string(c.softcap) + " " + DTypeName(c.type) +
                             " bs=" + std::to_string(c.bs);
    EXPECT_LE(RelMaxErr(Download<float>(be, out, ref.size()), ref), 3e-5) << what;
  }
  // A head dim the kernel cannot take is reported by Synchronize.
  testing::PagedSetup s({5}, {1}, 1, 1, 512, DType::kF32, *ref_be, 99);
  DevicePaged d(be, s);
  Dev out(be, s.q.size() * 4);
  be.Attention(d.q.f(), KvLayerView{d.k.as<void>(), d.v.as<void>(), s.layout}, d.batch,
               AttentionParams{1, 1, 512, 1.0f, 0.0f, 0}, out.f());
  Status st = be.Synchronize();
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_TRUE(be.Synchronize().ok());
}

// Not a check: prints how long the straightforward mat-vec takes on this GPU
// (the baseline the fast kernels will be measured against).
TEST(CudaBackendTest, PrintsMatMulTimes) {
  FORMIGA_REQUIRE_CUDA(be);
  const int64_t N = 4096, C = 4096;
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kQ4_K, DType::kQ6_K}) {
    const auto w = MakeWeights(type, N, C, 21);
    const size_t rb = DTypeRowBytes(type, C);
    Dev dw(be, w), dx(be, RandomVector(static_cast<size_t>(64 * C), 22)), dy(be, static_cast<size_t>(64 * N) * 4);
    const WeightView view{type, dw.as<void>(), C, N, rb};
    for (int64_t T : {1, 8, 64}) {
      ASSERT_TRUE(be.MatMul(view, dx.f(), dy.f(), T).ok());
      ASSERT_TRUE(be.Synchronize().ok());
      const int iters = 20;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < iters; ++i) ASSERT_TRUE(be.MatMul(view, dx.f(), dy.f(), T).ok());
      ASSERT_TRUE(be.Synchronize().ok());
      const double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / iters;
      std::printf("MatMul %-4s %lldx%lld T=%-2lld: %8.1f us  %7.1f GB/s of weights  %7.1f GFLOP/s\n",
                  DTypeName(type), static_cast<long long>(N), static_cast<long long>(C), static_cast<long long>(T),
                  us, static_cast<double>(w.size()) / us / 1e3, 2.0 * N * C * T / us / 1e3);
    }
  }
}

}  // namespace
}  // namespace formiga
