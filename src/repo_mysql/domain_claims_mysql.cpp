// MySQL statements of domain ownership (see repo/domain_claims.hpp).
#include "certctrl/repo/domain_claims.hpp"

#include "common.hpp"
#include "factories.hpp"

#include <algorithm>

namespace certctrl::repo::mysql_detail {

namespace {

constexpr std::size_t ancestors_per_query = 8;

constexpr char const* claim_columns =
    "d.name, d.user_id, d.verify_token, d.verified_at, d.created_at, "
    "(SELECT GROUP_CONCAT(s.user_id ORDER BY s.user_id) FROM domain_shares s WHERE s.name = d.name)";

domain::domain_claim read_claim(sql::ResultSet& rs) {
    domain::domain_claim c;
    c.name = rs.getString(1);
    c.user_id = static_cast<std::int64_t>(rs.getInt64(2));
    c.verify_token = rs.getString(3);
    c.verified_at = opt_int(rs, 4);
    c.created_at = static_cast<std::int64_t>(rs.getInt64(5));
    if (auto shares = opt_string(rs, 6)) {
        std::size_t pos = 0;
        while (pos < shares->size()) {
            std::size_t const comma = std::min(shares->find(',', pos), shares->size());
            c.shared_with.push_back(std::stoll(shares->substr(pos, comma - pos)));
            pos = comma + 1;
        }
    }
    return c;
}

// `s` as a LIKE pattern matching itself literally.
std::string like_literal(std::string const& s) {
    std::string out;
    for (char ch : s) {
        if (ch == '\\' || ch == '%' || ch == '_') {
            out += '\\';
        }
        out += ch;
    }
    return out;
}

class mysql_domain_claims final : public domain_claim_repository {
  public:
    std::optional<domain::domain_claim> blocking(work& w, std::int64_t user_id, std::string const& name,
                                                 bool lock) override {
        std::string_view const base = domain::claim_base(name);
        bool const wildcard = domain::is_wildcard(name);
        std::vector<std::string> ancestors = domain::reversed_ancestors(base);
        if (ancestors.empty()) {
            ancestors.emplace_back(domain::reversed_name(base));  // a one-label name: nothing above it
        }
        // Padded to whole groups with the first ancestor, so the statement text stays the same.
        while (ancestors.size() % ancestors_per_query != 0) {
            ancestors.push_back(ancestors.front());
        }
        std::string in_list;
        for (std::size_t i = 0; i < ancestors_per_query; ++i) {
            in_list += i == 0 ? "?" : ", ?";
        }
        std::string const q = std::string("SELECT ") + claim_columns +
                              " FROM domain_claims d WHERE d.user_id <> ? AND NOT EXISTS (SELECT 1 FROM "
                              "domain_shares s WHERE s.name = d.name AND s.user_id = ?) AND (d.name = ? OR "
                              "(d.wildcard = 1 AND d.base_rev IN (" +
                              in_list + ")) OR (? AND d.base_rev LIKE ?)) ORDER BY d.name LIMIT 1" +
                              (lock ? " FOR UPDATE" : "");
        std::string const below = like_literal(domain::reversed_name(base)) + "_%";
        for (std::size_t group = 0; group < ancestors.size(); group += ancestors_per_query) {
            auto ps = prepare(conn(w), q);
            unsigned i = 1;
            ps->setInt64(i++, user_id);
            ps->setInt64(i++, user_id);
            ps->setString(i++, name);
            for (std::size_t k = 0; k < ancestors_per_query; ++k) {
                ps->setString(i++, ancestors[group + k]);
            }
            ps->setInt(i++, wildcard && group == 0 ? 1 : 0);
            ps->setString(i++, below);
            rs_ptr rs(ps->executeQuery());
            if (rs->next()) {
                return read_claim(*rs);
            }
        }
        return std::nullopt;
    }

    void insert(work& w, domain::domain_claim const& c) override {
        std::string_view const base = domain::claim_base(c.name);
        auto ps = prepare(conn(w),
                          "INSERT INTO domain_claims (name, base_rev, wildcard, user_id, verify_token, "
                          "verified_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
                          "name = name");
        ps->setString(1, c.name);
        ps->setString(2, domain::reversed_name(base));
        ps->setInt(3, domain::is_wildcard(c.name) ? 1 : 0);
        ps->setInt64(4, c.user_id);
        ps->setString(5, c.verify_token);
        set_optional(*ps, 6, c.verified_at);
        ps->setInt64(7, c.created_at);
        ps->executeUpdate();
    }

    std::optional<domain::domain_claim> get(work& w, std::string const& name, bool lock) override {
        return find_one<domain::domain_claim>(conn(w),
                                              std::string("SELECT ") + claim_columns +
                                                  " FROM domain_claims d WHERE d.name = ?" +
                                                  (lock ? " FOR UPDATE" : ""),
                                              read_claim, name);
    }

    page<domain::domain_claim> list(work& w, std::int64_t user_id, page_query const& q) override {
        auto ps =
            prepare(conn(w), std::string("SELECT ") + claim_columns +
                                 " FROM domain_claims d WHERE d.user_id = ? OR d.name IN (SELECT s.name "
                                 "FROM domain_shares s WHERE s.user_id = ?) ORDER BY d.name LIMIT ? "
                                 "OFFSET ?");
        ps->setInt64(1, user_id);
        ps->setInt64(2, user_id);
        ps->setInt64(3, q.limit + 1);
        ps->setInt64(4, q.offset);
        rs_ptr rs(ps->executeQuery());
        page<domain::domain_claim> out;
        while (rs->next()) {
            out.items.push_back(read_claim(*rs));
        }
        if (static_cast<std::int64_t>(out.items.size()) > q.limit) {
            out.items.pop_back();
            out.has_more = true;
        }
        if (q.with_total) {
            auto count =
                prepare(conn(w),
                        "SELECT COUNT(*) FROM domain_claims d WHERE d.user_id = ? OR d.name IN (SELECT "
                        "s.name FROM domain_shares s WHERE s.user_id = ?)");
            count->setInt64(1, user_id);
            count->setInt64(2, user_id);
            rs_ptr n(count->executeQuery());
            n->next();
            out.total = static_cast<std::int64_t>(n->getInt64(1));
        }
        return out;
    }

    bool remove(work& w, std::int64_t user_id, std::string const& name) override {
        auto ps = prepare(conn(w), "DELETE FROM domain_claims WHERE name = ? AND user_id = ?");
        ps->setString(1, name);
        ps->setInt64(2, user_id);
        return ps->executeUpdate() > 0;
    }

    void transfer(work& w, std::string const& name, std::int64_t user_id, std::int64_t now) override {
        auto ps = prepare(conn(w), "UPDATE domain_claims SET user_id = ?, verified_at = ? WHERE name = ?");
        ps->setInt64(1, user_id);
        ps->setInt64(2, now);
        ps->setString(3, name);
        ps->executeUpdate();
        unshare(w, name, user_id);
    }

    void share(work& w, std::string const& name, std::int64_t user_id, std::int64_t now) override {
        auto ps =
            prepare(conn(w),
                    "INSERT INTO domain_shares (name, user_id, created_at) VALUES (?, ?, ?) ON DUPLICATE "
                    "KEY UPDATE name = name");
        ps->setString(1, name);
        ps->setInt64(2, user_id);
        ps->setInt64(3, now);
        ps->executeUpdate();
    }

    bool unshare(work& w, std::string const& name, std::int64_t user_id) override {
        auto ps = prepare(conn(w), "DELETE FROM domain_shares WHERE name = ? AND user_id = ?");
        ps->setString(1, name);
        ps->setInt64(2, user_id);
        return ps->executeUpdate() > 0;
    }

    void mark_verified(work& w, std::string const& name, std::int64_t now) override {
        auto ps = prepare(conn(w), "UPDATE domain_claims SET verified_at = ? WHERE name = ?");
        ps->setInt64(1, now);
        ps->setString(2, name);
        ps->executeUpdate();
    }
};

}  // namespace

std::unique_ptr<domain_claim_repository> make_domain_claims() {
    return std::make_unique<mysql_domain_claims>();
}

}  // namespace certctrl::repo::mysql_detail
