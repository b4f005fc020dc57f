// EngineService: one Engine driven by its own thread, so that every door
// (HTTP handlers, the WhatsApp worker, tests) can submit from any thread.
//
// The engine thread loops: take the submissions and cancellations queued
// since the last iteration, hand them to the Engine, run one Step() when
// there is work, sleep on a condition variable when there is none. Request
// callbacks run on the engine thread inside Step(): they must be quick (push
// the event to the caller's own queue) and must not call back into the
// service except Cancel(). Returning false from a callback cancels the
// request (the client went away); its KV blocks are freed within one step.
//
// Admission control: at most `max_queued` requests wait for a slot (those
// running are not counted); Submit past that returns ResourceExhausted, which
// HTTP maps to 429/503 with Retry-After.
//
// Thread safety: every public method is thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"

namespace formiga {

struct EngineServiceOptions {
  int64_t max_queued = 256;  // waiting requests at most (running ones not counted)
};

// A consistent view of the engine for /metrics and /health, refreshed after
// every iteration of the engine thread.
struct EngineSnapshot {
  int64_t running = 0;          // sequences with KV in the cache
  int64_t waiting = 0;          // accepted, not yet running
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_free = 0;   // allocatable now (free or only cached)
  int64_t kv_block_size = 0;
  uint64_t prefix_lookups = 0;  // full-block prefix lookups since start
  uint64_t prefix_hits = 0;
  uint64_t preemptions = 0;
  uint64_t steps = 0;           // engine iterations that ran the model
  uint64_t step_errors = 0;     // iterations where the engine itself failed
  bool accepting = true;        // false once Shutdown() began
};

class EngineService {
 public:
  // Starts the engine thread. `engine` must outlive the service.
  static std::unique_ptr<EngineService> Start(Engine& engine, EngineServiceOptions options = {});
  // Shutdown(/*cancel_in_flight=*/true) and join.
  ~EngineService();

  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  // Queues a request; blocks until the engine thread accepted or refused it
  // (at most one engine step). Errors: the Engine's validation errors
  // (InvalidArgument/OutOfRange), ResourceExhausted when the queue is full,
  // Cancelled when the service is shutting down.
  Result<int64_t> Submit(GenerationRequest request);
  // Cancels a queued or running request; its final event says kCancelled.
  void Cancel(int64_t request_id);

  // Stops accepting new requests. With cancel_in_flight, every request is
  // cancelled; without, they run to completion. Returns when the engine has
  // no work left (or at once if called from a callback). Idempotent.
  void Shutdown(bool cancel_in_flight);

  EngineSnapshot Snapshot() const;
  const Engine& engine() const { return engine_; }

 private:
  struct Pending {
    GenerationRequest request;
    std::promise<Result<int64_t>> accepted;
  };

  EngineService(Engine& engine, EngineServiceOptions options);
  void Loop();
  void RefreshSnapshot();  // engine thread only

  Engine& engine_;
  EngineServiceOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;   // engine thread: new input or stop
  std::condition_variable idle_;   // Shutdown(): engine has no work left
  std::deque<std::unique_ptr<Pending>> inbox_;
  std::vector<int64_t> cancels_;
  bool accepting_ = true;
  bool cancel_all_ = false;
  bool stop_ = false;
  bool busy_ = false;              // engine has work (guarded by mu_)
  EngineSnapshot snapshot_;        // guarded by mu_
  std::thread thread_;
  std::thread::id thread_id_;
};

}  // namespace formiga
