// EngineService: many threads submitting to one engine get what they would
// get alone; the queue bound, cancellation and shutdown behave as promised.
#include "runtime/engine_service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/tiny_model_test_util.h"

namespace formiga {
namespace {

// Collects a request's events; Wait() returns once the final one arrived.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int32_t> tokens;
  bool done = false;
  FinishReason finish = FinishReason::kNone;
  std::atomic<bool> keep_going{true};

  GenerationRequest Request(std::vector<int32_t> prompt, int64_t max_tokens) {
    GenerationRequest r;
    r.prompt = std::move(prompt);
    r.sampling.temperature = 0.0f;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.on_event = [this](const TokenEvent& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (!e.done) tokens.push_back(e.token);
      if (e.done) {
        done = true;
        finish = e.finish;
        cv.notify_all();
      }
      return keep_going.load();
    };
    return r;
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
};

std::vector<int32_t> Prompt(int i, int len) {
  std::vector<int32_t> p;
  for (int k = 0; k < len; ++k) p.push_back(100 + (i * 7919 + k * 104729) % 40000);
  return p;
}

class EngineServiceTest : public TinyModelTest {
 protected:
  std::unique_ptr<Engine> NewEngine(int64_t max_seqs) {
    EngineOptions o;
    o.n_ctx = 128;
    o.max_seqs = max_seqs;
    auto e = Engine::Create(*model_, *tokenizer_, o);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return std::move(e.value());
  }
};

TEST_F(EngineServiceTest, ConcurrentSubmittersGetTheirSoloOutputs) {
  constexpr int kClients = 8;
  std::vector<std::vector<int32_t>> solo(kClients);
  {
    auto engine = NewEngine(1);
    auto service = EngineService::Start(*engine);
    for (int i = 0; i < kClients; ++i) {
      Collector c;
      ASSERT_TRUE(service->Submit(c.Request(Prompt(i, 4 + i), 8)).ok());
      c.Wait();
      solo[i] = c.tokens;
      ASSERT_EQ(solo[i].size(), 8u);
    }
  }
  auto engine = NewEngine(kClients);
  auto service = EngineService::Start(*engine);
  std::vector<Collector> out(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto id = service->Submit(out[i].Request(Prompt(i, 4 + i), 8));
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      out[i].Wait();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(out[i].tokens, solo[i]) << "client " << i;
    EXPECT_EQ(out[i].finish, FinishReason::kLength);
  }
  // NOTE: the final events are delivered inside a step and the snapshot is
  // refreshed right after it, so a client can wake up a moment before the
  // snapshot shows the engine idle.
  EngineSnapshot s = service->Snapshot();
  for (int tries = 0; tries < 200 && (s.running != 0 || s.kv_blocks_free != s.kv_blocks_total); ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    s = service->Snapshot();
  }
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.kv_blocks_free, s.kv_blocks_total);
  EXPECT_GT(s.steps, 0u);
}

TEST_F(EngineServiceTest, ValidationErrorsComeBackFromSubmit) {
  auto engine = NewEngine(2);
  auto service = EngineService::Start(*engine);
  Collector c;
  auto r = service->Submit(c.Request({}, 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  auto too_long = service->Submit(c.Request(Prompt(0, 200), 4));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kOutOfRange);
}

TEST_F(EngineServiceTest, CallbackReturningFalseFreesTheBlocks) {
  auto engine = NewEngine(2);
  auto service = EngineService::Start(*engine);
  Collector c;
  c.keep_going = false;  // the client is gone after the first token
  ASSERT_TRUE(service->Submit(c.Request(Prompt(1, 20), 100)).ok());
  c.Wait();
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_LE(c.tokens.size(), 2u);
  service->Shutdown(/*cancel_in_flight=*/false);
  EngineSnapshot s = service->Snapshot();
  EXPECT_EQ(s.kv_blocks_free, s.kv_blocks_total);
}

TEST_F(EngineServiceTest, CancelFromAnotherThread) {
  auto engine = NewEngine(2);
  auto service = EngineService::Start(*engine);
  Collector c;
  auto id = service->Submit(c.Request(Prompt(2, 10), 100));
  ASSERT_TRUE(id.ok());
  service->Cancel(*id);
  c.Wait();
  EXPECT_EQ(c.finish, FinishReason::kCancelled);
  EXPECT_LT(c.tokens.size(), 100u);
}

TEST_F(EngineServiceTest, QueueBoundRefusesWithResourceExhausted) {
  auto engine = NewEngine(1);
  EngineServiceOptions so;
  so.max_queued = 2;
  auto service = EngineService::Start(*engine, so);
  std::vector<Collector> cs(8);
  int accepted = 0, refused = 0;
  for (auto& c : cs) {
    auto r = service->Submit(c.Request(Prompt(3, 8), 60));
    if (r.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
      c.done = true;
      ++refused;
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_LE(accepted, 4);  // one running + the queue bound (+ one admitted between submits)
  for (auto& c : cs) c.Wait();
}

TEST_F(EngineServiceTest, ShutdownDrainsOrCancelsAndRefusesNewWork) {
  auto engine = NewEngine(2);
  auto service = EngineService::Start(*engine);
  Collector a;
  ASSERT_TRUE(service->Submit(a.Request(Prompt(4, 6), 5)).ok());
  service->Shutdown(/*cancel_in_flight=*/false);
  a.Wait();
  EXPECT_EQ(a.finish, FinishReason::kLength);
  EXPECT_EQ(a.tokens.size(), 5u);
  Collector b;
  auto r = service->Submit(b.Request(Prompt(5, 6), 5));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(service->Snapshot().accepting);
}

TEST_F(EngineServiceTest, DestructorCancelsRunningWork) {
  auto engine = NewEngine(2);
  Collector c;
  {
    auto service = EngineService::Start(*engine);
    ASSERT_TRUE(service->Submit(c.Request(Prompt(6, 6), 100)).ok());
  }
  EXPECT_TRUE(c.done);
  EXPECT_NE(c.finish, FinishReason::kNone);
}

}  // namespace
}  // namespace formiga
