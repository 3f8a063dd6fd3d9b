//! Copies from the GPU to the CPU, collected when they have arrived: a
//! [`PendingRead`] copies byte ranges of device buffers into its own staging
//! buffer behind the work already submitted, and asks for it to be mapped;
//! the caller either checks now and then without waiting
//! ([`PendingRead::try_take`]) or waits for it ([`PendingRead::wait`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::context::{GpuContext, GpuError};

/// How long a finished copy's mapping may take to be reported.
const MAPPING_TIMEOUT: Duration = Duration::from_secs(60);

/// What a mapping callback left: nothing yet, or its outcome.
type Arrival = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// A copy on its way back from the GPU (see the module docs).
pub struct PendingRead {
    device: wgpu::Device,
    staging: wgpu::Buffer,
    sizes: Vec<u64>,
    arrival: Arrival,
    taken: bool,
    /// The submission of the copy (waiting for it does not wait for work
    /// submitted after it).
    submission: wgpu::SubmissionIndex,
}

impl PendingRead {
    /// Copies the byte ranges `(buffer, offset, size)` (each a multiple of
    /// four bytes) after everything already submitted to `ctx`'s queue.
    pub fn start(ctx: &GpuContext, ranges: &[(&wgpu::Buffer, u64, u64)]) -> Self {
        let total: u64 = ranges.iter().map(|r| r.2).sum();
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: total.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        let mut at = 0;
        for &(buffer, offset, size) in ranges {
            encoder.copy_buffer_to_buffer(buffer, offset, &staging, at, size);
            at += size;
        }
        let submission = ctx.queue.submit([encoder.finish()]);
        let arrival: Arrival = Arc::default();
        let slot = arrival.clone();
        staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |result| {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(result);
                }
            });
        Self {
            device: ctx.device.clone(),
            staging,
            sizes: ranges.iter().map(|r| r.2).collect(),
            arrival,
            taken: false,
            submission,
        }
    }

    /// The bytes of each range, if they have arrived (`None`: not yet, or
    /// already taken). Never waits for the GPU.
    pub fn try_take(&mut self) -> Option<Result<Vec<Vec<u8>>, GpuError>> {
        if self.taken {
            return None;
        }
        if let Err(e) = self.device.poll(wgpu::PollType::Poll) {
            self.taken = true;
            return Some(Err(GpuError::Failed(e.to_string())));
        }
        let outcome = self.arrival.lock().ok()?.take()?;
        self.taken = true;
        Some(
            outcome
                .map_err(|e| GpuError::Failed(e.to_string()))
                .map(|()| self.copy_out()),
        )
    }

    /// Waits for the bytes of each range (not for the work submitted after
    /// the copy; any thread may wait).
    pub fn wait(mut self) -> Result<Vec<Vec<u8>>, GpuError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(self.submission.clone()),
                timeout: None,
            })
            .map_err(|e| GpuError::Failed(e.to_string()))?;
        // The copy is done; its mapping callback may still be on its way on
        // another thread that polled the device at the same time.
        let deadline = Instant::now() + MAPPING_TIMEOUT;
        loop {
            if let Some(outcome) = self.try_take() {
                return outcome;
            }
            if self.taken || Instant::now() >= deadline {
                return Err(GpuError::Failed(
                    "a readback was not mapped after the device finished its work".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn copy_out(&self) -> Vec<Vec<u8>> {
        let mapped = self.staging.slice(..).get_mapped_range();
        let mut out = Vec::with_capacity(self.sizes.len());
        let mut at = 0usize;
        for &size in &self.sizes {
            out.push(mapped[at..at + size as usize].to_vec());
            at += size as usize;
        }
        drop(mapped);
        self.staging.unmap();
        out
    }
}
