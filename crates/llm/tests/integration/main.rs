//! The model layer's integration tests: each adapter against a fake provider on
//! 127.0.0.1 that speaks the provider's real wire format. One test binary, not one per
//! file, so a new test file goes here as a module.

mod anthropic_fake;
mod conformance;
mod fallback;
mod gemini_fake;
mod openai_fake;
