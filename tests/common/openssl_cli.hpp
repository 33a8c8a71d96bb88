#pragma once
// The `openssl` command line, for checks that must not rely on our own OpenSSL code.
#include "process.hpp"
#include "test_env.hpp"

#include "certctrl/crypto/x509.hpp"

#include <fstream>
#include <sstream>
#include <string>

namespace certctrl::test {

/// `openssl verify -CAfile root [-untrusted intermediates] leaf`: its output ("<file>: OK" on success).
inline std::string openssl_verify(std::string const& chain_pem, std::string const& root_pem) {
    temp_dir d;
    auto blocks = crypto::split_certificates(chain_pem);
    if (blocks.empty()) {
        return "no certificate";
    }
    std::ofstream(d.path() / "leaf.pem") << blocks.front();
    std::ofstream(d.path() / "root.pem") << root_pem;
    std::vector<std::string> args{"/usr/bin/openssl", "verify", "-CAfile", (d.path() / "root.pem").string()};
    if (blocks.size() > 1) {
        std::ofstream inter(d.path() / "untrusted.pem");
        for (std::size_t i = 1; i < blocks.size(); ++i) {
            inter << blocks[i];
        }
        args.push_back("-untrusted");
        args.push_back((d.path() / "untrusted.pem").string());
    }
    args.push_back((d.path() / "leaf.pem").string());
    std::ofstream(d.path() / "stdin");
    int pid = spawn_process(args, {}, d.path() / "out.txt", d.path() / "stdin");
    auto code = wait_process(pid, std::chrono::seconds(30));
    std::ifstream in(d.path() / "out.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    return (code && *code == 0 ? "" : "exit " + std::to_string(code.value_or(-1)) + ": ") + ss.str();
}

/// `openssl x509 -noout -ext subjectAltName` of the first certificate in `pem`: its output.
inline std::string openssl_sans(std::string const& pem) {
    temp_dir d;
    auto blocks = crypto::split_certificates(pem);
    if (blocks.empty()) {
        return "no certificate";
    }
    std::ofstream(d.path() / "leaf.pem") << blocks.front();
    std::ofstream(d.path() / "stdin");
    int pid = spawn_process({"/usr/bin/openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                             (d.path() / "leaf.pem").string()},
                            {}, d.path() / "out.txt", d.path() / "stdin");
    (void)wait_process(pid, std::chrono::seconds(30));
    std::ifstream in(d.path() / "out.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace certctrl::test
