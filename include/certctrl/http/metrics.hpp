#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace certctrl::http {

/// Request counters, a latency histogram and gauges, rendered in the Prometheus text format (0.0.4).
/// Thread-safe; recording costs one short mutex hold.
class metrics {
  public:
    /// Upper bounds (seconds) of the latency histogram buckets.
    static constexpr std::array<double, 12> buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                    0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

    /// Counts one finished request under its route pattern ("unmatched" when no route matched).
    void record(std::string const& route, std::string const& method, unsigned status,
                std::chrono::steady_clock::duration latency);

    void connection_opened() { ++open_connections_; }
    void connection_closed() { --open_connections_; }
    std::int64_t open_connections() const { return open_connections_.load(); }

    /// Adds a source of extra lines (e.g. DB pool gauges) called at each render.
    void add_source(std::function<void(std::string&)> source);

    /// The whole exposition text.
    std::string render() const;

  private:
    struct histogram {
        std::array<std::uint64_t, buckets.size()> counts{};
        std::uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mutex_;
    std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
    std::map<std::string, histogram> latency_;
    std::vector<std::function<void(std::string&)>> sources_;
    std::atomic<std::int64_t> open_connections_{0};
};

}  // namespace certctrl::http
