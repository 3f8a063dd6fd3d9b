//! Video files: RGBA frames piped to the system `ffmpeg` and encoded as H.264
//! in `yuv420p` MP4 (plays in browsers and slide software), or, when `ffmpeg`
//! is missing, written as a numbered PNG sequence so that nothing is lost.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::JoinHandle;

/// The program that encodes videos.
pub const FFMPEG: &str = "ffmpeg";

/// Where frames go.
enum Sink {
    /// An `ffmpeg` process reading raw RGBA frames on its standard input.
    Ffmpeg {
        child: Child,
        stdin: ChildStdin,
        stderr: JoinHandle<String>,
    },
    /// PNG files `frame_000000.png`, … in a folder.
    Png { dir: PathBuf },
}

/// What a finished video consists of.
#[derive(Debug, Clone, PartialEq)]
pub enum VideoOutput {
    /// An MP4 file.
    Mp4(PathBuf),
    /// A folder of numbered PNG frames (`ffmpeg` was missing).
    PngFrames(PathBuf),
    /// One frame as a PNG (`eifield render --still`).
    Still(PathBuf),
}

impl VideoOutput {
    /// The file or folder written.
    pub fn path(&self) -> &Path {
        match self {
            Self::Mp4(p) | Self::PngFrames(p) | Self::Still(p) => p,
        }
    }
}

/// Writes frames of one size into an MP4 (or a PNG sequence).
pub struct VideoWriter {
    sink: Sink,
    target: PathBuf,
    width: u32,
    height: u32,
    fps: u32,
    frames: u64,
}

/// The folder a PNG sequence goes to when `video` cannot be encoded: beside
/// it, named after it, never an existing path (`-1`, `-2`, … are appended).
pub fn png_fallback_dir(video: &Path) -> PathBuf {
    let stem = video
        .file_stem()
        .map_or_else(|| "video".into(), |s| s.to_string_lossy().into_owned());
    let parent = video.parent().unwrap_or(Path::new(""));
    let base = parent.join(format!("{stem}_frames"));
    if !base.exists() {
        return base;
    }
    (1..)
        .map(|k| parent.join(format!("{stem}_frames-{k}")))
        .find(|p| !p.exists())
        .expect("some numbered name is free")
}

/// The first `DIR/PREFIX-NNN.EXT` (NNN = 001, 002, …) that does not exist yet.
pub fn next_free_path(dir: &Path, prefix: &str, ext: &str) -> PathBuf {
    (1..)
        .map(|k| dir.join(format!("{prefix}-{k:03}.{ext}")))
        .find(|p| !p.exists())
        .expect("some numbered name is free")
}

impl VideoWriter {
    /// Starts a video of `width × height` pixels at `fps` frames per second.
    /// `path` must not exist (callers check their overwrite policy first).
    ///
    /// Returns the writer and, when `ffmpeg` is missing, a notice for the
    /// user saying where the PNG frames go instead.
    pub fn create(
        path: &Path,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<(Self, Option<String>), String> {
        if width == 0 || height == 0 || fps == 0 {
            return Err(format!(
                "a video needs a positive size and frame rate (got {width}x{height} at {fps} fps)"
            ));
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create folder {}: {e}", parent.display()))?;
        }
        let mut command = Command::new(FFMPEG);
        command
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgba"])
            .args(["-video_size", &format!("{width}x{height}")])
            .args(["-framerate", &fps.to_string(), "-i", "pipe:0"])
            // yuv420p needs even sizes: pad odd ones by one pixel.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"])
            .args(["-movflags", "+faststart"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let (sink, notice) = match command.spawn() {
            Ok(mut child) => {
                let stdin = child.stdin.take().expect("stdin is piped");
                let mut err = child.stderr.take().expect("stderr is piped");
                let stderr = std::thread::spawn(move || {
                    let mut text = String::new();
                    let _ = err.read_to_string(&mut text);
                    text
                });
                (
                    Sink::Ffmpeg {
                        child,
                        stdin,
                        stderr,
                    },
                    None,
                )
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = png_fallback_dir(path);
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("cannot create folder {}: {e}", dir.display()))?;
                let notice = format!(
                    "`{FFMPEG}` was not found on PATH (install the Debian package `ffmpeg` to get MP4 videos); \
                     writing the frames as PNG images to {dir} instead. To make the video later: \
                     ffmpeg -framerate {fps} -i '{dir}/frame_%06d.png' -c:v libx264 -pix_fmt yuv420p {video}",
                    dir = dir.display(),
                    video = path.display(),
                );
                (Sink::Png { dir }, Some(notice))
            }
            Err(e) => return Err(format!("cannot start `{FFMPEG}`: {e}")),
        };
        Ok((
            Self {
                sink,
                target: path.to_owned(),
                width,
                height,
                fps,
                frames: 0,
            },
            notice,
        ))
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Frames per second of playback.
    pub fn fps(&self) -> u32 {
        self.fps
    }

    /// Frame size in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// True when frames go to a PNG sequence rather than an MP4.
    pub fn is_png_sequence(&self) -> bool {
        matches!(self.sink, Sink::Png { .. })
    }

    /// Appends one frame of `width × height` RGBA pixels (row-major, top row first).
    pub fn push_rgba(&mut self, rgba: &[u8]) -> Result<(), String> {
        let expected = self.width as usize * self.height as usize * 4;
        if rgba.len() != expected {
            return Err(format!(
                "frame {} has {} bytes, expected {expected} ({}x{} RGBA)",
                self.frames,
                rgba.len(),
                self.width,
                self.height
            ));
        }
        match &mut self.sink {
            Sink::Ffmpeg { stdin, .. } => {
                if let Err(e) = stdin.write_all(rgba) {
                    return Err(format!(
                        "`{FFMPEG}` stopped taking frames ({e}) while writing {}",
                        self.target.display()
                    ));
                }
            }
            Sink::Png { dir } => {
                let path = dir.join(format!("frame_{:06}.png", self.frames));
                image::save_buffer(
                    &path,
                    rgba,
                    self.width,
                    self.height,
                    image::ExtendedColorType::Rgba8,
                )
                .map_err(|e| format!("{}: {e}", path.display()))?;
            }
        }
        self.frames += 1;
        Ok(())
    }

    /// Closes the video and waits for the encoder.
    pub fn finish(self) -> Result<VideoOutput, String> {
        match self.sink {
            Sink::Ffmpeg {
                mut child,
                stdin,
                stderr,
            } => {
                // Closing its input ends ffmpeg. (The web build has no
                // processes, and its pipe type nothing to drop.)
                #[cfg_attr(target_arch = "wasm32", allow(clippy::drop_non_drop))]
                drop(stdin);
                let status = child
                    .wait()
                    .map_err(|e| format!("waiting for `{FFMPEG}`: {e}"))?;
                let log = stderr.join().unwrap_or_default();
                if status.success() {
                    Ok(VideoOutput::Mp4(self.target))
                } else {
                    Err(format!(
                        "`{FFMPEG}` failed ({status}) writing {}: {}",
                        self.target.display(),
                        log.trim()
                    ))
                }
            }
            Sink::Png { dir } => Ok(VideoOutput::PngFrames(dir)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_skip_existing_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = next_free_path(dir.path(), "shot", "png");
        assert_eq!(first, dir.path().join("shot-001.png"));
        std::fs::write(&first, b"x").unwrap();
        assert_eq!(
            next_free_path(dir.path(), "shot", "png"),
            dir.path().join("shot-002.png")
        );
    }

    #[test]
    fn png_fallback_never_reuses_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let video = dir.path().join("waves.mp4");
        let a = png_fallback_dir(&video);
        assert_eq!(a, dir.path().join("waves_frames"));
        std::fs::create_dir(&a).unwrap();
        assert_eq!(png_fallback_dir(&video), dir.path().join("waves_frames-1"));
    }

    #[test]
    fn frames_of_the_wrong_size_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = VideoWriter {
            sink: Sink::Png {
                dir: dir.path().to_owned(),
            },
            target: dir.path().join("v.mp4"),
            width: 4,
            height: 2,
            fps: 30,
            frames: 0,
        };
        let err = sink.push_rgba(&[0; 31]).unwrap_err();
        assert!(err.contains("expected 32"), "{err}");
        sink.push_rgba(&[200; 32]).unwrap();
        assert!(dir.path().join("frame_000000.png").exists());
        assert_eq!(sink.frames(), 1);
    }
}
