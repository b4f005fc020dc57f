// Noticing that the client of a non-streaming request went away.
//
// cpp-httplib 0.11 (Debian 12) gives a handler no way to see its connection:
// a streamed response finds out at its next write, but a non-streaming
// handler would wait for the whole generation. PeerWatch finds the
// connection's socket among the process's descriptors by its peer address
// (the one httplib reports in Request::remote_addr/remote_port) and asks the
// kernel, without reading, whether the peer has closed it (POLLRDHUP).
//
// NOTE: a client that half-closes after sending its request (shutdown of its
// write side) looks gone too; HTTP clients do not do that.
//
// Thread safety: one PeerWatch per request handler thread.
#pragma once

#include <string>

namespace formiga::server {

class PeerWatch {
 public:
  PeerWatch(std::string remote_addr, int remote_port)
      : remote_addr_(std::move(remote_addr)), remote_port_(remote_port) {}

  // True when the connection's peer has closed it (or reset it). False when
  // it is open, or when the socket cannot be found (then we never cancel).
  bool PeerClosed();

 private:
  int FindSocket() const;  // -1 if not found

  std::string remote_addr_;
  int remote_port_;
  int fd_ = -2;  // -2: not looked up yet; -1: not found
};

}  // namespace formiga::server
