#pragma once
// One io_context per I/O thread. A connection lives on one of them for its whole life, so its handlers never
// run at the same time and need no strand (a strand per connection on a shared io_context cost a third of the
// throughput of GET /health: bench/compare.sh).

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>
#include <vector>

namespace certctrl::http {

class io_pool {
  public:
    /// `threads` io_contexts (at least one), each to be run by one thread.
    explicit io_pool(unsigned threads);
    ~io_pool();
    io_pool(io_pool const&) = delete;
    io_pool& operator=(io_pool const&) = delete;

    /// The first context: acceptors, signals and the background tasks run here.
    boost::asio::io_context& main() { return *contexts_.front(); }
    /// The next context in turn, for a new connection.
    boost::asio::io_context& next();
    std::size_t size() const { return contexts_.size(); }

    /// Runs every context, the first on the calling thread; returns once stop() was called and all returned.
    void run();
    /// Stops every context (any thread).
    void stop();

  private:
    using guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
    std::vector<guard> guards_;  // the contexts keep running while idle
    std::atomic<std::size_t> next_{0};
};

}  // namespace certctrl::http
