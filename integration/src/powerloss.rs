//! Power loss without device-mapper: a node's data directory is an ext4 filesystem in an
//! image file, mounted through a loop device. To pull the plug, the node is killed and the
//! image file is copied *without syncing anything*: the copy holds what the filesystem had
//! handed to the loop device — everything fsync'd, plus whatever writeback happened to push —
//! and nothing that still sat dirty in the mounted filesystem's page cache. The copy is then
//! mounted (ext4 replays its journal, as after a real power cut) and the node restarted on it.
//!
//! Every mount point and image lives under the run's directory, so [`cleanup_stale`] finds
//! what a crashed run left behind: mounts first, then their loop devices.

use std::fs;
use std::path::{Path, PathBuf};

use crate::sys::run;

/// The image size; sparse, so it costs only what is written.
const IMAGE_BYTES: u64 = 512 << 20;

/// One node's disk: an image file, its loop device, and where it is mounted.
#[derive(Debug)]
pub struct Disk {
    image: PathBuf,
    mount: PathBuf,
    loop_device: Option<String>,
    /// How many times the plug was pulled on this disk.
    pub power_losses: u32,
}

impl Disk {
    /// Makes an ext4 image in `dir` and mounts it at `dir/mnt`.
    pub fn create(dir: &Path) -> Result<Disk, String> {
        let image = dir.join("disk.img");
        let mount = dir.join("mnt");
        fs::create_dir_all(&mount).map_err(|e| format!("{}: {e}", mount.display()))?;
        let file = fs::File::create(&image).map_err(|e| format!("{}: {e}", image.display()))?;
        file.set_len(IMAGE_BYTES)
            .map_err(|e| format!("{}: {e}", image.display()))?;
        drop(file);
        run(
            "mkfs.ext4",
            &["-q", "-F", "-E", "nodiscard", "-L", "raftlog", path(&image)],
        )?;
        let mut disk = Disk {
            image,
            mount,
            loop_device: None,
            power_losses: 0,
        };
        disk.attach()?;
        Ok(disk)
    }

    /// Where the filesystem is mounted: the node's data directory goes inside.
    pub fn mount_point(&self) -> &Path {
        &self.mount
    }

    fn attach(&mut self) -> Result<(), String> {
        let device = run("losetup", &["--find", "--show", path(&self.image)])?
            .trim()
            .to_string();
        if let Err(error) = run("mount", &["-t", "ext4", &device, path(&self.mount)]) {
            let _ = run("losetup", &["-d", &device]);
            return Err(error);
        }
        self.loop_device = Some(device);
        Ok(())
    }

    /// Unmounts and detaches; dirty pages still in the page cache are written to the old
    /// image on the way out, which is why [`Disk::pull_plug`] copies the image first.
    fn detach(&mut self) -> Result<(), String> {
        let Some(device) = self.loop_device.take() else {
            return Ok(());
        };
        if run("umount", &[path(&self.mount)]).is_err() {
            run("umount", &["-l", path(&self.mount)])?;
        }
        run("losetup", &["-d", &device]).map(drop)
    }

    /// Pulls the plug. The node using the disk must already be dead (SIGKILL): the image is
    /// copied as it is, unsynced, and the copy becomes the disk.
    pub fn pull_plug(&mut self) -> Result<(), String> {
        let cut = self.image.with_extension("cut");
        run("cp", &["--sparse=always", path(&self.image), path(&cut)])?;
        self.detach()?;
        fs::rename(&cut, &self.image).map_err(|e| format!("{}: {e}", cut.display()))?;
        self.attach()?;
        self.power_losses += 1;
        Ok(())
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Err(error) = self.detach() {
            eprintln!("cleanup: {error}");
        }
        let _ = fs::remove_file(&self.image);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("the suite's paths are UTF-8")
}

/// Unmounts every filesystem mounted under `base` and detaches every loop device whose
/// image is under `base`: what a run that died left behind.
pub fn cleanup_stale(base: &Path) {
    let base = base.to_string_lossy().into_owned();
    if let Ok(mounts) = fs::read_to_string("/proc/self/mounts") {
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter(|point| point.starts_with(&base))
            .collect();
        points.sort_unstable_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            eprintln!("cleanup: unmounting stale {point}");
            if run("umount", &[point]).is_err() {
                let _ = run("umount", &["-l", point]);
            }
        }
    }
    if let Ok(list) = run(
        "losetup",
        &["--list", "--noheadings", "--output", "NAME,BACK-FILE"],
    ) {
        for line in list.lines() {
            let mut fields = line.split_whitespace();
            let (Some(device), Some(file)) = (fields.next(), fields.next()) else {
                continue;
            };
            if file.starts_with(&base) {
                eprintln!("cleanup: detaching stale {device} ({file})");
                let _ = run("losetup", &["-d", device]);
            }
        }
    }
}
