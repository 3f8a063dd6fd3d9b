//! Many lattices of one grid integrated at once on a GPU: the batch is one
//! more dimension of the state, drive and `h_in` buffers (the members one
//! after the other) and of the dispatch (one layer of workgroups per
//! member), and each member has its own block of step constants: its
//! parameters, and its own step length.
//!
//! Each member walks time through its own input changes, exactly as it
//! would alone (the CPU engine's segments, so the same steps and the same
//! bits as [`crate::GpuEngine`]): a round of dispatches lasts until the
//! first member's segment ends, then that member's drive and step length
//! change and the next round starts. Members that have reached their
//! target keep their state (their constants say "inactive") until the
//! others get there. So members whose inputs change at different times
//! (different pulse frequencies) share a batch without being split into
//! groups with the same step boundaries: at most a few steps per target
//! are spent on members that wait, and a sweep over a pulse train's
//! frequency stays one batch. What members must share is what is compiled
//! into the step kernel: the grid's shape, the integration method and the
//! coupling stencil ([`BatchKey`]).

use eifield_model::FieldScene;
use eifield_model::rhs::Coeffs;
use eifield_model::stepper::Method;
use eifield_model::stimulus::{Inputs, Segment, TIME_EPS};

use crate::context::{GpuContext, GpuError};
use crate::engine::{
    Buffers, BuildError, DriveOnGpu, Pipelines, Target, drive_change, encode_steps, gpu_coupler,
    method_of, params_block, params_stride, scatter, step_group,
};
use crate::readback::PendingRead;
use crate::shader::{self, Precision};

/// E and I of one lattice.
pub type State = (Vec<f64>, Vec<f64>);

/// Steps encoded into one submission at most (bounds the command buffer).
const MAX_STEPS_PER_SUBMIT: u64 = 512;

/// What the members of a batch share: scenes with equal keys can be
/// integrated in one batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BatchKey {
    rows: usize,
    cols: usize,
    method: Method,
    /// The coupling sums as the step kernel computes them (its WGSL).
    coupling: String,
}

impl BatchKey {
    /// The key of a scene, or why the GPU does not run it.
    pub fn of(scene: &FieldScene) -> Result<Self, BuildError> {
        let coupler = gpu_coupler(scene, scene.grid)?;
        Ok(Self {
            rows: scene.grid.rows,
            cols: scene.grid.cols,
            method: method_of(&scene.integrator),
            coupling: shader::coupling_function(&coupler),
        })
    }
}

/// The most members of lattices of `cells` cells that one batch on `ctx`
/// holds in `precision`: one block of step constants each in one uniform
/// buffer, one layer of workgroups each, and E (or E and I, with a wide
/// stencil) of all of them in one storage binding, with indices that fit
/// the kernel's 32-bit integers.
pub fn max_members(ctx: &GpuContext, precision: Precision, cells: usize) -> usize {
    let limits = ctx.device.limits();
    let by_constants = limits.max_uniform_buffer_binding_size / params_stride(precision);
    let by_dispatch = u64::from(limits.max_compute_workgroups_per_dimension);
    let binding = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let per_member = (2 * cells * precision.bytes()).max(1) as u64;
    let by_memory = binding / per_member;
    let by_index = (i32::MAX as u64) / (2 * cells.max(1) as u64);
    by_constants
        .min(by_dispatch)
        .min(by_memory)
        .min(by_index)
        .max(1) as usize
}

/// One lattice of a batch.
struct Member {
    /// Its grid (the batch's shape; its own boundary).
    grid: eifield_model::Grid,
    coeffs: Coeffs,
    inputs: Inputs,
    h_ex: Vec<f64>,
    dt: f64,
    t: f64,
    steps: u64,
    /// The segment being integrated and the steps of it still to take.
    segment: Option<(Segment, u64)>,
    drive_on_gpu: DriveOnGpu,
    host_drive: Vec<f64>,
    /// Stopped for good (its state blew up): it keeps its state.
    stopped: bool,
}

/// A batch of lattices of one grid on a GPU (see the module docs).
pub struct GpuEnsemble {
    ctx: GpuContext,
    precision: Precision,
    method: Method,
    grid: eifield_model::Grid,
    pipelines: Pipelines,
    buffers: Buffers,
    /// Which of the two state buffers holds the state.
    current: usize,
    step_groups: [Vec<wgpu::BindGroup>; 2],
    members: Vec<Member>,
    /// Rounds of dispatches so far (one per change of any member's segment).
    rounds: u64,
}

impl GpuEnsemble {
    /// A batch of `scenes` (validated, with equal [`BatchKey`]s) at t = 0,
    /// member `m` starting from `states[m]` (E, I), in `precision`.
    pub fn with_states(
        ctx: &GpuContext,
        scenes: &[&FieldScene],
        states: &[State],
        precision: Precision,
    ) -> Result<Self, BuildError> {
        let Some(first) = scenes.first() else {
            return Err(BuildError::Batch("a batch needs at least one scene".into()));
        };
        if states.len() != scenes.len() {
            return Err(BuildError::Batch(format!(
                "{} scenes but {} initial states",
                scenes.len(),
                states.len()
            )));
        }
        if precision == Precision::F64 && !ctx.adapter.f64 {
            return Err(GpuError::NoF64 {
                found: ctx.adapter.name.clone(),
            }
            .into());
        }
        let key = BatchKey::of(first)?;
        for (m, scene) in scenes.iter().enumerate().skip(1) {
            if BatchKey::of(scene)? != key {
                return Err(BuildError::Batch(format!(
                    "scene {m} differs from scene 0 in its grid's shape, integration method \
                     or coupling kernel; a batch shares those"
                )));
            }
        }
        let grid = first.grid;
        let n = grid.len();
        let count = scenes.len();
        let most = max_members(ctx, precision, n);
        if count > most {
            return Err(BuildError::Batch(format!(
                "{count} lattices of {n} cells exceed what one batch holds on {} ({most})",
                ctx.adapter.name
            )));
        }
        for (m, (e, i)) in states.iter().enumerate() {
            if e.len() != n || i.len() != n {
                return Err(BuildError::Batch(format!(
                    "the initial state of member {m} has {} and {} values for {n} cells",
                    e.len(),
                    i.len()
                )));
            }
        }
        let method = key.method;
        let coupler = gpu_coupler(first, grid)?;
        let device = &ctx.device;
        let pipelines = Pipelines::new(
            device,
            precision,
            method,
            shader::DEFAULT_TILE,
            &coupler,
            false,
            count,
        );
        let state_bytes = (n * precision.bytes()) as u64;
        let buffers = Buffers::new(ctx, &pipelines, precision, state_bytes, count)?;
        let step_groups = [0, 1].map(|from| step_group(device, &pipelines, &buffers, from));
        let mut members = Vec::with_capacity(count);
        let (mut e_all, mut i_all, mut h_in_all) = (
            Vec::with_capacity(count * n),
            Vec::with_capacity(count * n),
            Vec::with_capacity(count * n),
        );
        for (scene, (e, i)) in scenes.iter().zip(states) {
            let (h_ex, h_in) = scene.cell_drives();
            let mut inputs = Inputs::default();
            inputs.set_pulses(scene, grid.cols);
            inputs.set_noise(scene, n, 0.0);
            e_all.extend_from_slice(e);
            i_all.extend_from_slice(i);
            h_in_all.extend_from_slice(&h_in);
            members.push(Member {
                grid: scene.grid,
                coeffs: Coeffs::from_scene(scene),
                inputs,
                h_ex,
                dt: scene.integrator.dt(),
                t: 0.0,
                steps: 0,
                segment: None,
                drive_on_gpu: DriveOnGpu::Unknown,
                host_drive: Vec::new(),
                stopped: false,
            });
        }
        let queue = &ctx.queue;
        queue.write_buffer(&buffers.e[0], 0, &precision.encode(&e_all));
        queue.write_buffer(&buffers.i[0], 0, &precision.encode(&i_all));
        queue.write_buffer(&buffers.h_in, 0, &precision.encode(&h_in_all));
        Ok(Self {
            ctx: ctx.clone(),
            precision,
            method,
            grid,
            pipelines,
            buffers,
            current: 0,
            step_groups,
            members,
            rounds: 0,
        })
    }

    /// Members in the batch.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the batch is empty (never: a batch has a member).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The precision of the state and arithmetic.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The integration method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Model time of member `m`.
    pub fn time(&self, m: usize) -> f64 {
        self.members[m].t
    }

    /// Steps member `m` has taken.
    pub fn steps(&self, m: usize) -> u64 {
        self.members[m].steps
    }

    /// Rounds of dispatches so far: one per change of any member's step
    /// length or drive (all members advance in every round).
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Stops member `m` for good: it keeps its state from now on (after a
    /// blow-up, say).
    pub fn stop(&mut self, m: usize) {
        self.members[m].stopped = true;
        self.members[m].segment = None;
    }

    /// Integrates each member `m` with `targets[m] = Some(t)` to model time
    /// `t` as it would alone (the same segments and steps as the CPU
    /// engine and [`crate::GpuEngine::advance_to`]); members with `None`,
    /// or stopped, keep their state. Does not check the state.
    pub fn advance(&mut self, targets: &[Option<f64>]) -> Result<(), GpuError> {
        if targets.len() != self.members.len() {
            return Err(GpuError::Failed(format!(
                "{} targets for a batch of {} lattices",
                targets.len(),
                self.members.len()
            )));
        }
        let n = self.grid.len();
        let mut params_changed = true;
        loop {
            let mut encoder = self
                .ctx
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            // Members that finished a segment start the next one: their
            // drive for it and their step length.
            let (mut cells, mut values) = (Vec::new(), Vec::new());
            for (m, (member, target)) in self.members.iter_mut().zip(targets).enumerate() {
                let Some(t_end) = target.filter(|_| !member.stopped) else {
                    continue;
                };
                if member.segment.is_some() {
                    continue;
                }
                if member.t >= t_end - TIME_EPS {
                    member.t = member.t.max(t_end);
                    continue;
                }
                let segment = member.inputs.segment(member.t, t_end, member.dt);
                let offset = m * n;
                let change = drive_change(
                    &mut member.inputs,
                    &member.h_ex,
                    &mut member.drive_on_gpu,
                    &mut member.host_drive,
                    segment.mid,
                );
                if let Some(whole) = change.whole {
                    self.ctx.queue.write_buffer(
                        &self.buffers.drive,
                        (offset * self.precision.bytes()) as u64,
                        &self.precision.encode(whole),
                    );
                }
                cells.extend(change.cells.into_iter().map(|k| offset + k));
                values.extend(change.values);
                member.segment = Some((segment, segment.steps));
                params_changed = true;
            }
            // One scatter per submission: its staging buffers are written
            // when the submission starts.
            scatter(
                &self.ctx,
                self.precision,
                &self.pipelines,
                &mut self.buffers,
                &mut encoder,
                &cells,
                &values,
                Target::Drive,
            );
            let Some(run) = self
                .members
                .iter()
                .filter_map(|m| m.segment.map(|(_, left)| left))
                .min()
            else {
                // Nothing recorded beyond the scatter (none when no member runs).
                self.ctx.queue.submit([encoder.finish()]);
                return Ok(());
            };
            if params_changed {
                let mut bytes =
                    Vec::with_capacity(params_stride(self.precision) as usize * self.members.len());
                for member in &self.members {
                    let (h, active) = member.segment.map_or((0.0, false), |(s, _)| (s.h, true));
                    bytes.extend(params_block(
                        self.precision,
                        self.method,
                        member.grid,
                        &member.coeffs,
                        h,
                        active,
                    ));
                }
                self.ctx.queue.write_buffer(&self.buffers.params, 0, &bytes);
                params_changed = false;
            }
            let mut left = run;
            loop {
                let chunk = left.min(MAX_STEPS_PER_SUBMIT);
                encode_steps(
                    &mut encoder,
                    &self.pipelines,
                    &self.step_groups,
                    &mut self.current,
                    self.grid,
                    self.members.len(),
                    chunk,
                );
                left -= chunk;
                self.ctx.queue.submit([encoder.finish()]);
                if left == 0 {
                    break;
                }
                encoder = self
                    .ctx
                    .device
                    .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            }
            self.rounds += 1;
            for member in &mut self.members {
                if let Some((segment, left)) = member.segment.as_mut() {
                    *left -= run;
                    member.steps += run;
                    if *left == 0 {
                        member.t = segment.end;
                        member.inputs.drop_finished(member.t);
                        member.segment = None;
                        // It waits (or starts another segment) next round.
                        params_changed = true;
                    }
                }
            }
        }
    }

    /// E and I of every member (as f64), read back from the GPU after the
    /// work submitted so far.
    pub fn read_states(&self) -> Result<Vec<State>, GpuError> {
        let bytes = (self.members.len() * self.grid.len() * self.precision.bytes()) as u64;
        let (e, i) = (&self.buffers.e[self.current], &self.buffers.i[self.current]);
        let mut out = PendingRead::start(&self.ctx, &[(e, 0, bytes), (i, 0, bytes)]).wait()?;
        let i = self.precision.decode(&out.pop().unwrap_or_default());
        let e = self.precision.decode(&out.pop().unwrap_or_default());
        let n = self.grid.len().max(1);
        Ok(e.chunks(n)
            .zip(i.chunks(n))
            .map(|(e, i)| (e.to_vec(), i.to_vec()))
            .collect())
    }
}
