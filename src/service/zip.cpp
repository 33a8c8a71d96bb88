#include "certctrl/service/zip.hpp"

#include <zip.h>

#include <memory>
#include <stdexcept>

namespace certctrl::service {

namespace {

[[noreturn]] void fail(std::string const& what, zip_error_t* err) {
    std::string msg = "zip: " + what;
    if (err != nullptr) {
        msg += std::string(": ") + zip_error_strerror(err);
        zip_error_fini(err);
    }
    throw std::runtime_error(msg);
}

}  // namespace

std::string make_zip(std::vector<std::pair<std::string, std::string>> const& entries) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, &err);
    if (src == nullptr) {
        fail("buffer", &err);
    }
    zip_t* za = zip_open_from_source(src, ZIP_TRUNCATE, &err);
    if (za == nullptr) {
        zip_source_free(src);
        fail("open", &err);
    }
    zip_source_keep(src);  // still ours after zip_close, to read the archive back
    std::unique_ptr<zip_source_t, decltype(&zip_source_free)> keep(src, zip_source_free);
    for (auto const& [name, content] : entries) {
        // The data must stay alive until zip_close: it is `entries`, which outlives this function's work.
        zip_source_t* s = zip_source_buffer(za, content.data(), content.size(), 0);
        if (s == nullptr || zip_file_add(za, name.c_str(), s, ZIP_FL_ENC_UTF_8 | ZIP_FL_OVERWRITE) < 0) {
            if (s != nullptr) {
                zip_source_free(s);
            }
            std::string const why = zip_strerror(za);
            zip_discard(za);
            throw std::runtime_error("zip: add " + name + ": " + why);
        }
    }
    if (zip_close(za) != 0) {
        std::string const why = zip_strerror(za);
        zip_discard(za);
        throw std::runtime_error("zip: close: " + why);
    }
    zip_stat_t st;
    if (zip_source_stat(src, &st) != 0 || zip_source_open(src) != 0) {
        throw std::runtime_error("zip: reading the archive back failed");
    }
    std::string out(static_cast<std::size_t>(st.size), '\0');
    zip_int64_t const n = zip_source_read(src, out.data(), st.size);
    zip_source_close(src);
    if (n < 0 || static_cast<zip_uint64_t>(n) != st.size) {
        throw std::runtime_error("zip: short read of the archive");
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> read_zip(std::string const& data) {
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t* src = zip_source_buffer_create(data.data(), data.size(), 0, &err);
    if (src == nullptr) {
        fail("buffer", &err);
    }
    zip_t* za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (za == nullptr) {
        zip_source_free(src);
        fail("open", &err);
    }
    std::unique_ptr<zip_t, decltype(&zip_discard)> archive(za, zip_discard);
    std::vector<std::pair<std::string, std::string>> out;
    zip_int64_t const count = zip_get_num_entries(za, 0);
    for (zip_int64_t i = 0; i < count; ++i) {
        zip_stat_t st;
        if (zip_stat_index(za, static_cast<zip_uint64_t>(i), 0, &st) != 0) {
            throw std::runtime_error("zip: stat");
        }
        std::unique_ptr<zip_file_t, decltype(&zip_fclose)> f(
            zip_fopen_index(za, static_cast<zip_uint64_t>(i), 0), zip_fclose);
        if (!f) {
            throw std::runtime_error("zip: open entry");
        }
        std::string content(static_cast<std::size_t>(st.size), '\0');
        if (zip_fread(f.get(), content.data(), st.size) != static_cast<zip_int64_t>(st.size)) {
            throw std::runtime_error("zip: read entry");
        }
        out.emplace_back(st.name, std::move(content));
    }
    return out;
}

}  // namespace certctrl::service
