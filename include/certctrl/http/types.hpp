#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace certctrl::http {

namespace beast_http = boost::beast::http;

/// The request and response types every handler sees.
using request = beast_http::request<beast_http::string_body>;
using response = beast_http::response<beast_http::string_body>;

template <class T>
using awaitable = boost::asio::awaitable<T>;

}  // namespace certctrl::http
