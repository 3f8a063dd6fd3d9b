//! Which GPU the engine runs on: a `wgpu` device and queue with what is known
//! of their adapter, either opened here (headless runs, benchmarks, tests) or
//! handed over by a host that already has one (the viewer's render device).

use crate::shader::Precision;

/// The GPU could not be opened or lacks what was asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No adapter at all.
    #[error(
        "no GPU adapter found (install a Vulkan driver: on Debian, `libvulkan1` and \
         `mesa-vulkan-drivers` give a software one)"
    )]
    NoAdapter,
    /// An adapter exists, but none with f64 support.
    #[error(
        "no GPU adapter supports f64 shaders (SHADER_F64); the adapters found are: {found}. \
         Use `--precision f32`, or `--backend cpu`"
    )]
    NoF64 {
        /// Names of the adapters found.
        found: String,
    },
    /// The device could not be created.
    #[error("the GPU adapter `{adapter}` refused to open a device: {reason}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// wgpu's reason.
        reason: String,
    },
    /// The lattice does not fit into one buffer of the device.
    #[error(
        "the lattice needs buffers of {needed} bytes, but `{adapter}` allows at most {limit} \
         per buffer; use a smaller grid, `--precision f32`, or `--backend cpu`"
    )]
    TooLarge {
        /// Adapter name.
        adapter: String,
        /// Bytes of the largest buffer bound.
        needed: u64,
        /// The device's limit.
        limit: u64,
    },
    /// The device ran out of memory for the lattice.
    #[error(
        "`{adapter}` has not enough memory for the lattice ({reason}); use a smaller grid or `--precision f32`"
    )]
    OutOfMemory {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        reason: String,
    },
    /// The device was lost or a transfer failed.
    #[error("the GPU failed: {0}")]
    Failed(String),
}

/// What kind of adapter a device sits on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name, as the driver gives it.
    pub name: String,
    /// A software rasteriser (Mesa's lavapipe, for instance) rather than a GPU.
    pub software: bool,
    /// Whether f64 shaders run on it.
    pub f64: bool,
}

impl AdapterSummary {
    /// The summary of a wgpu adapter's information and features.
    pub fn new(info: &wgpu::AdapterInfo, features: wgpu::Features) -> Self {
        Self {
            name: info.name.clone(),
            software: info.device_type == wgpu::DeviceType::Cpu,
            f64: features.contains(wgpu::Features::SHADER_F64),
        }
    }
}

/// A device and queue to run the engine on.
#[derive(Clone)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// Its adapter.
    pub adapter: AdapterSummary,
}

/// What [`GpuContext::open`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextRequest {
    /// Precision wanted (`None`: f64 where some adapter has it, else f32).
    pub precision: Option<Precision>,
    /// Whether a software adapter will do.
    pub allow_software: bool,
}

impl GpuContext {
    /// Wraps a device that a host already has (the viewer's render device).
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: &wgpu::AdapterInfo) -> Self {
        let adapter = AdapterSummary::new(info, device.features());
        Self {
            device,
            queue,
            adapter,
        }
    }

    /// The precision to use when none is asked for: f64 where the device has it.
    pub fn default_precision(&self) -> Precision {
        if self.adapter.f64 {
            Precision::F64
        } else {
            Precision::F32
        }
    }

    /// Opens a device on the best adapter for `request`: a hardware GPU before
    /// a software one, and one with f64 shaders when f64 is asked for (or, with
    /// no precision asked, when any adapter has them).
    pub fn open(request: ContextRequest) -> Result<Self, GpuError> {
        let instance = instance();
        let adapters =
            futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        let candidates: Vec<_> = adapters
            .into_iter()
            .map(|a| (AdapterSummary::new(&a.get_info(), a.features()), a))
            .filter(|(s, _)| request.allow_software || !s.software)
            .collect();
        if candidates.is_empty() {
            return Err(GpuError::NoAdapter);
        }
        let needs_f64 = match request.precision {
            Some(Precision::F64) => true,
            Some(Precision::F32) => false,
            None => candidates.iter().any(|(s, _)| s.f64),
        };
        let found = candidates
            .iter()
            .map(|(s, _)| s.name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        let (summary, adapter) = candidates
            .into_iter()
            .filter(|(s, _)| s.f64 || !needs_f64)
            .min_by_key(|(s, _)| s.software)
            .ok_or(GpuError::NoF64 { found })?;
        let mut features = wgpu::Features::empty();
        if summary.f64 {
            features |= wgpu::Features::SHADER_F64;
        }
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("eifield-gpu"),
            required_features: features,
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = futures_lite::future::block_on(adapter.request_device(&descriptor))
            .map_err(|e| GpuError::Device {
            adapter: summary.name.clone(),
            reason: e.to_string(),
        })?;
        // wgpu's default reaction to an error outside an error scope is a
        // panic; report it instead (the operation then fails visibly).
        device.on_uncaptured_error(std::sync::Arc::new(|error| {
            eprintln!("GPU error: {error}");
        }));
        Ok(Self {
            device,
            queue,
            adapter: summary,
        })
    }
}

/// A wgpu instance on the backends that can run f64 (Vulkan) and the others
/// this build has, configured from the environment (`WGPU_BACKEND`, …).
fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}
