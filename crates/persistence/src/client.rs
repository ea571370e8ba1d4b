//! libpq's TLS library, set up once per process before any connection.

/// Initialises OpenSSL without its exit-time cleanup handler.
///
/// libpq uses OpenSSL for TLS connections. By default OpenSSL registers a
/// cleanup routine that runs when the process exits; if another thread (the
/// pool's, opening a connection) is inside OpenSSL at that moment, the
/// process crashes as it exits. Initialising it first with
/// `OPENSSL_INIT_NO_ATEXIT` (what `openssl_sys::init` does) prevents the
/// handler from being registered at all. Idempotent and cheap; every
/// connection path in this crate calls it.
pub fn prepare_client_library() {
    openssl_sys::init();
}
