#pragma once
// Shared by the ACME run's files (internal to certctrl_worker).

// Runs one step: a failure ends the run with its error.
#define CERTCTRL_STEP(expr)                          \
    {                                                \
        auto aw_step_ = (expr);                      \
        auto r_step_ = co_await std::move(aw_step_); \
        if (!r_step_) {                              \
            co_return r_step_.error();               \
        }                                            \
    }
