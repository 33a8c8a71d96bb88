#include "test_env.hpp"

#include "process.hpp"

#include <cppconn/connection.h>
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cstdio>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace certctrl::test {

namespace {

std::string env(char const* name) {
    char const* v = std::getenv(name);
    return v == nullptr ? std::string() : std::string(v);
}

std::unique_ptr<sql::Connection> connect(config::database_config const& db, bool with_schema) {
    sql::ConnectOptionsMap opts;
    opts["hostName"] = sql::SQLString(db.host);
    opts["port"] = static_cast<int>(db.port);
    opts["userName"] = sql::SQLString(db.user);
    opts["password"] = sql::SQLString(db.password);
    if (with_schema) {
        opts["schema"] = sql::SQLString(db.name);
    }
    opts["OPT_CONNECT_TIMEOUT"] = 5;
    return std::unique_ptr<sql::Connection>(sql::mysql::get_driver_instance()->connect(opts));
}

std::string random_suffix() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    return std::to_string(::getpid()) + "_" + std::to_string(++counter) + "_" + std::to_string(rd() % 100000);
}

}  // namespace

std::optional<pebble_env> pebble() {
    auto get = [](char const* name) -> std::string {
        char const* v = std::getenv(name);
        return v == nullptr ? std::string() : std::string(v);
    };
    pebble_env p;
    p.directory_url = get("CERTCTRL_TEST_PEBBLE_DIRECTORY");
    p.ca_file = get("CERTCTRL_TEST_PEBBLE_CA_FILE");
    p.management_url = get("CERTCTRL_TEST_PEBBLE_MANAGEMENT");
    p.challtestsrv_url = get("CERTCTRL_TEST_CHALLTESTSRV");
    std::string const port = get("CERTCTRL_TEST_PEBBLE_HTTP01_PORT");
    if (p.directory_url.empty() || p.ca_file.empty() || port.empty()) {
        return std::nullopt;
    }
    p.http01_port = static_cast<unsigned>(std::stoul(port));
    return p;
}

std::optional<dns::update_target> knot() {
    std::string const port = env("CERTCTRL_TEST_KNOT_PORT");
    if (port.empty()) {
        return std::nullopt;
    }
    dns::update_target t;
    t.server = "127.0.0.1";
    t.port = static_cast<unsigned>(std::stoul(port));
    t.zone = "certctrl.test";
    t.tsig_key_name = env("CERTCTRL_TEST_KNOT_TSIG_NAME");
    t.tsig_secret = env("CERTCTRL_TEST_KNOT_TSIG_SECRET");
    return t;
}

bool in_ci() {
    return env("CI") == "true";
}

long long wait_for_room_in_window(int seconds, int window_s) {
    using namespace std::chrono;
    auto const now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    long long const window_ms = window_s * 1000LL;
    long long const left = window_ms - now % window_ms;
    if (left >= seconds * 1000LL) {
        return (now - now % window_ms) / 1000;
    }
    std::this_thread::sleep_for(milliseconds(left + 200));  // a little into the next window
    return (now - now % window_ms + window_ms) / 1000;
}

std::optional<config::database_config> admin_db() {
    if (env("CERTCTRL_TEST_DB_HOST").empty()) {
        return std::nullopt;
    }
    config::database_config db;
    db.host = env("CERTCTRL_TEST_DB_HOST");
    db.port = static_cast<std::uint16_t>(std::stoi(env("CERTCTRL_TEST_DB_PORT")));
    db.user = env("CERTCTRL_TEST_DB_USER");
    db.password = env("CERTCTRL_TEST_DB_PASSWORD");
    db.name = "mysql";
    db.pool_size = 2;
    db.connect_timeout_s = 2;
    db.read_timeout_s = 10;
    db.write_timeout_s = 10;
    return db;
}

std::string admin_db_socket() {
    return env("CERTCTRL_TEST_DB_SOCKET");
}

test_schema::test_schema() {
    auto admin = admin_db();
    if (!admin) {
        throw std::runtime_error("no test database configured");
    }
    db_ = *admin;
    db_.name = "t_" + random_suffix();
    auto c = connect(db_, false);
    std::unique_ptr<sql::Statement> st(c->createStatement());
    st->execute("CREATE DATABASE `" + db_.name + "` CHARACTER SET utf8mb4");
}

test_schema::~test_schema() {
    try {
        auto c = connect(db_, false);
        std::unique_ptr<sql::Statement> st(c->createStatement());
        st->execute("DROP DATABASE IF EXISTS `" + db_.name + "`");
    } catch (...) {
        // The whole server goes away at the end of test.sh anyway.
    }
}

void test_schema::exec(std::string const& sql) const {
    auto c = connect(db_, true);
    std::unique_ptr<sql::Statement> st(c->createStatement());
    st->execute(sql);
}

long long test_schema::query_int(std::string const& sql) const {
    auto c = connect(db_, true);
    std::unique_ptr<sql::Statement> st(c->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery(sql));
    return rs->next() ? static_cast<long long>(rs->getInt64(1)) : -1;
}

std::string test_schema::query_text(std::string const& sql) const {
    auto c = connect(db_, true);
    std::unique_ptr<sql::Statement> st(c->createStatement());
    std::unique_ptr<sql::ResultSet> rs(st->executeQuery(sql));
    return rs->next() ? std::string(rs->getString(1)) : std::string();
}

std::string test_schema::dump_text(std::vector<std::string> const& tables) const {
    auto c = connect(db_, true);
    std::string out;
    for (auto const& t : tables) {
        std::unique_ptr<sql::Statement> st(c->createStatement());
        std::unique_ptr<sql::ResultSet> rs(st->executeQuery("SELECT * FROM `" + t + "`"));
        unsigned const n = rs->getMetaData()->getColumnCount();
        while (rs->next()) {
            out += t + ":";
            for (unsigned i = 1; i <= n; ++i) {
                out += "|" + std::string(rs->getString(i));
            }
            out += "\n";
        }
    }
    return out;
}

temp_dir::temp_dir() {
    std::string base = env("CERTCTRL_TEST_TMP");
    if (base.empty()) {
        base = std::filesystem::temp_directory_path().string();
    }
    std::string templ = base + "/t.XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = templ;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string read_file(std::filesystem::path const& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

bool private_mariadb::available() {
    return !env("CERTCTRL_TEST_MARIADB_TEMPLATE").empty();
}

private_mariadb::private_mariadb() {
    auto templ = env("CERTCTRL_TEST_MARIADB_TEMPLATE");
    if (templ.empty()) {
        throw std::runtime_error("CERTCTRL_TEST_MARIADB_TEMPLATE not set");
    }
    std::filesystem::copy(templ, dir_.path() / "data", std::filesystem::copy_options::recursive);
    port_ = free_port();
    start();
}

private_mariadb::~private_mariadb() {
    stop();
}

void private_mariadb::start() {
    if (pid_ > 0) {
        return;
    }
    auto data = (dir_.path() / "data").string();
    auto sock = (dir_.path() / "mysqld.sock").string();
    auto err = (dir_.path() / "mariadb.err").string();
    std::string mariadbd = env("MARIADBD").empty() ? "/usr/sbin/mariadbd" : env("MARIADBD");
    std::vector<std::string> args = {mariadbd,
                                     "--no-defaults",
                                     "--user=root",
                                     "--datadir=" + data,
                                     "--socket=" + sock,
                                     "--port=" + std::to_string(port_),
                                     "--bind-address=127.0.0.1",
                                     "--log-error=" + err,
                                     "--pid-file=" + (dir_.path() / "mariadbd.pid").string(),
                                     "--skip-name-resolve",
                                     "--skip-log-bin",
                                     "--innodb-buffer-pool-size=32M",
                                     "--innodb-log-file-size=16M"};
    pid_t pid = spawn_process(args, {}, dir_.path() / "mariadbd.out");
    pid_ = pid;
    config::database_config probe = db("mysql");
    for (int i = 0; i < 300; ++i) {
        try {
            connect(probe, false);
            return;
        } catch (sql::SQLException const&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    throw std::runtime_error("private MariaDB did not start; see " + err);
}

void private_mariadb::stop() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    if (!wait_process(pid_, std::chrono::seconds(60))) {
        ::kill(pid_, SIGKILL);
        wait_process(pid_, std::chrono::seconds(10));
    }
    pid_ = -1;
}

config::database_config private_mariadb::db(std::string const& name) const {
    auto admin = admin_db();
    config::database_config d = admin ? *admin : config::database_config{};
    d.host = "127.0.0.1";
    d.port = port_;
    d.name = name;
    return d;
}

void private_mariadb::create_schema(std::string const& name) const {
    auto c = connect(db("mysql"), false);
    std::unique_ptr<sql::Statement> st(c->createStatement());
    st->execute("CREATE DATABASE IF NOT EXISTS `" + name + "`");
}

std::string source_commit() {
    std::string out;
    if (FILE* p = popen("git -C '" CERTCTRL_SOURCE_DIR "' rev-parse --short=12 HEAD 2>/dev/null", "r")) {
        char buf[64];
        while (fgets(buf, sizeof buf, p)) {
            out += buf;
        }
        pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    return out;
}

}  // namespace certctrl::test
