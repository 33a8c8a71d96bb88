#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>

namespace certctrl::test {

/// Runs one awaitable (a repository or service operation) to completion on a private io_context.
template <class T>
T run_awaitable(boost::asio::awaitable<T> op) {
    boost::asio::io_context ioc;
    std::optional<T> out;
    auto task = [&]() -> boost::asio::awaitable<void> { out.emplace(co_await std::move(op)); };
    boost::asio::co_spawn(ioc, task, boost::asio::detached);
    ioc.run();
    return std::move(*out);
}

}  // namespace certctrl::test
