#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace certctrl::domain {

/// One row of a certificate's issue history (agent contract 4.2). The row is also the job: PENDING rows are
/// claimed by a worker, which moves the same row to PROCESSING and then to SUCCESS, FAILED or CANCELLED.
struct issue_row {
    std::int64_t id = 0;
    std::int64_t cert_id = 0;
    std::int64_t user_id = 0;
    int attempt = 1;                 // issue_attempt_number: 1 + the rows before it for the certificate
    std::string status = "PENDING";  // PENDING | PROCESSING | SUCCESS | FAILED | CANCELLED
    std::string kind = "issue";      // issue | renew
    std::string acme_order_id;
    std::string error_message;
    bool cancel_requested = false;
    std::int64_t started_at = 0;
    std::int64_t completed_at = 0;
    std::int64_t created_at = 0;
    std::int64_t run_after = 0;
    std::optional<std::int64_t> acct_id;  // the ACME account of its current (or last) order; none for SELF_CA
                                          // // a PENDING row is not started before (a retry's backoff)

    bool open() const { return status == "PENDING" || status == "PROCESSING"; }
};

}  // namespace certctrl::domain
