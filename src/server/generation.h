// GenerationRun: the generations of one HTTP request (n choices, or several
// prompts) submitted to the EngineService, with their events funnelled into
// one queue that the request's HTTP thread drains.
//
// The engine thread only pushes events (quick, never blocks on the client);
// once the run is abandoned (client gone, timeout) every callback returns
// false, which cancels the generation and frees its KV blocks within one
// engine step, and Abandon() also cancels through the service at once.
//
// Thread safety: Next() and finished() from one consumer thread; Abandon()
// from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/status.h"
#include "runtime/engine.h"
#include "runtime/engine_service.h"

namespace formiga::server {

struct ChoiceEvent {
  int choice = 0;
  TokenEvent event;
};

class GenerationRun {
 public:
  // Submits `requests` in order (their on_event is replaced); choice i is
  // requests[i]. On a refusal the ones already submitted are cancelled and
  // the refusal is returned.
  static Result<std::shared_ptr<GenerationRun>> Start(EngineService& service,
                                                      std::vector<GenerationRequest> requests);
  ~GenerationRun();

  // The next event, or nullopt when `deadline` passed first.
  std::optional<ChoiceEvent> Next(std::chrono::steady_clock::time_point deadline);
  // True once every choice delivered its final event (to Next()).
  bool finished() const { return done_ == n_; }
  int size() const { return n_; }

  // Stops every unfinished generation (idempotent).
  void Abandon();

 private:
  struct Queue {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<ChoiceEvent> events;
    bool abandoned = false;
  };

  GenerationRun(EngineService& service, int n) : service_(service), n_(n), queue_(std::make_shared<Queue>()) {}

  EngineService& service_;
  int n_;
  int done_ = 0;  // consumer thread only
  std::vector<int64_t> ids_;
  std::vector<bool> choice_done_;
  std::shared_ptr<Queue> queue_;
};

}  // namespace formiga::server
