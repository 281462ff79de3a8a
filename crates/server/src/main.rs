/// mimalloc instead of glibc's allocator: a request allocates many small, short-lived
/// objects across the runtime's threads, and glibc's malloc/free showed as ~12% of the
/// server's CPU in the order benchmark's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stonepot_server::cli::main()
}
