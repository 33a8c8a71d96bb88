// The pools blocking and CPU-heavy work runs on: an exception in a job never ends the process, and a full or
// slow bounded pool answers at once.
#include "certctrl/service/compute.hpp"

#include "run_awaitable.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace certctrl::service {
namespace {

struct throws_result {
    result<int> operator()() const { throw std::runtime_error("boom"); }
};
struct throws_string {
    std::string operator()() const { throw std::runtime_error("boom"); }
};
struct gives_seven {
    result<int> operator()() const { return 7; }
};

TEST(Compute, AJobThatThrowsGivesAnErrorInsteadOfEndingTheProcess) {
    boost::asio::thread_pool pool(1);
    auto r = test::run_awaitable(async_compute(pool, throws_result{}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::internal);
    EXPECT_EQ(r.error().detail, "boom");
    EXPECT_EQ(test::run_awaitable(async_compute(pool, throws_string{})), "");
    EXPECT_EQ(*test::run_awaitable(async_compute(pool, gives_seven{})), 7) << "the pool still works";
    pool.join();
}

TEST(Compute, ABoundedPoolCatchesTooAndRefusesWhenFull) {
    bounded_pool pool("test", 1, 4);
    auto r = test::run_awaitable(run_bounded(pool, throws_result{}, "the job"));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::internal);
    EXPECT_EQ(*test::run_awaitable(run_bounded(pool, gives_seven{}, "the job")), 7);
    pool.join();
}

}  // namespace
}  // namespace certctrl::service
