//! The worker pool: the threads that run blocking work (database, rendering)
//! for requests. A fixed few per CPU, so a boot storm queues here instead of
//! starting a thread (with its stack, allocator cache and deflate tables) per
//! request.

/// Worker threads per CPU.
const WORKERS_PER_CPU: usize = 4;

/// A fixed pool of worker threads for requests' blocking work.
pub struct Workers {
    pool: rayon::ThreadPool,
}

impl Workers {
    /// Starts `WORKERS_PER_CPU` threads per CPU.
    pub fn new() -> Workers {
        Workers {
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(
                    WORKERS_PER_CPU
                        * std::thread::available_parallelism()
                            .map(usize::from)
                            .unwrap_or(2),
                )
                .thread_name(|i| format!("boot-worker-{i}"))
                // A panicking job drops its reply: the request gets a 500, the
                // worker goes on.
                .panic_handler(|_| tracing::error!("a boot-data job panicked"))
                .build()
                .expect("boot workers start"),
        }
    }

    /// Runs `job` on a worker thread and waits for its result without
    /// holding a thread; `None` when the job panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = tx.send(job());
        });
        rx.await.ok()
    }
}

impl Default for Workers {
    fn default() -> Workers {
        Workers::new()
    }
}
