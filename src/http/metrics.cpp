#include "certctrl/http/metrics.hpp"

#include <fmt/format.h>

namespace certctrl::http {

namespace {

// Escapes a label value per the exposition format.
std::string label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

void metrics::record(std::string const& route, std::string const& method, unsigned status,
                     std::chrono::steady_clock::duration latency) {
    double const secs = std::chrono::duration<double>(latency).count();
    std::lock_guard lock(mutex_);
    ++requests_[{route, method, status}];
    auto& h = latency_[route];
    for (std::size_t i = 0; i < buckets.size(); ++i) {
        if (secs <= buckets[i]) {
            ++h.counts[i];
        }
    }
    ++h.count;
    h.sum += secs;
}

void metrics::add_source(std::function<void(std::string&)> source) {
    std::lock_guard lock(mutex_);
    sources_.push_back(std::move(source));
}

std::string metrics::render() const {
    std::string out;
    std::vector<std::function<void(std::string&)>> sources;
    {
        std::lock_guard lock(mutex_);
        out += "# HELP certctrl_http_requests_total HTTP requests by route pattern, method and status.\n";
        out += "# TYPE certctrl_http_requests_total counter\n";
        for (auto const& [k, n] : requests_) {
            auto const& [route, method, status] = k;
            out +=
                fmt::format("certctrl_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                            label(route), label(method), status, n);
        }
        out += "# HELP certctrl_http_request_duration_seconds Time from request read to response written.\n";
        out += "# TYPE certctrl_http_request_duration_seconds histogram\n";
        for (auto const& [route, h] : latency_) {
            auto const r = label(route);
            for (std::size_t i = 0; i < buckets.size(); ++i) {
                out += fmt::format(
                    "certctrl_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", r,
                    buckets[i], h.counts[i]);
            }
            out += fmt::format(
                "certctrl_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", r, h.count);
            out += fmt::format("certctrl_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", r, h.sum);
            out +=
                fmt::format("certctrl_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", r, h.count);
        }
        sources = sources_;
    }
    out += "# HELP certctrl_http_open_connections Open client connections.\n";
    out += "# TYPE certctrl_http_open_connections gauge\n";
    out += fmt::format("certctrl_http_open_connections {}\n", open_connections_.load());
    for (auto const& s : sources) {
        s(out);
    }
    return out;
}

}  // namespace certctrl::http
