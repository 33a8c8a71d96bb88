#include "certctrl/http/io_pool.hpp"

#include <thread>

namespace certctrl::http {

io_pool::io_pool(unsigned threads) {
    for (unsigned i = 0; i < (threads == 0 ? 1 : threads); ++i) {
        // Concurrency hint 1: each context is run by one thread.
        contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
        guards_.emplace_back(contexts_.back()->get_executor());
    }
}

io_pool::~io_pool() {
    stop();
}

boost::asio::io_context& io_pool::next() {
    return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void io_pool::run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
        threads.emplace_back([c = contexts_[i].get()] { c->run(); });
    }
    contexts_.front()->run();
    for (auto& t : threads) {
        t.join();
    }
}

void io_pool::stop() {
    for (auto& g : guards_) {
        g.reset();
    }
    for (auto& c : contexts_) {
        c->stop();
    }
}

}  // namespace certctrl::http
