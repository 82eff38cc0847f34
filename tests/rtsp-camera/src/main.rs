//! A real RTSP camera for tests and the demo: serves an H.264 MP4 file with gstreamer-rtsp-server,
//! without re-encoding, paced in real time like a live camera.
//!
//! Each client connection plays the file from the start; at its end the stream ends (EOS), which
//! also exercises the edge's reconnect path. With `--mount` repeated, one process is several cameras.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// H.264 MP4 file to serve (tests/setup/fixtures.sh makes `.fixtures/vtest.mp4`).
    #[arg(long, env = "VIGIL_CAMERA_FILE")]
    file: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// TCP port for RTSP.
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// Mount path(s); each one is a camera, e.g. `--mount /cam1 --mount /cam2`.
    #[arg(long = "mount", default_value = "/cam")]
    mounts: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-rtsp-camera: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    gst::init().context("initialise gstreamer")?;
    let file = args.file.canonicalize().with_context(|| format!("video file {}", args.file.display()))?;
    let location = file.to_str().context("video path is not UTF-8")?;
    if location.contains('"') {
        bail!("video path must not contain a double quote");
    }
    let server = rtsp::RTSPServer::new();
    server.set_address(&args.address);
    server.set_service(&args.port.to_string());
    let mounts = server.mount_points().context("server has no mount points")?;
    for mount in &args.mounts {
        if !mount.starts_with('/') {
            bail!("mount {mount:?} must start with /");
        }
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( filesrc location=\"{location}\" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
        ));
        factory.set_shared(false);
        mounts.add_factory(mount, factory);
    }
    let main_loop = gst::glib::MainLoop::new(None, false);
    let _source = server.attach(None).context("cannot listen (port in use?)")?;
    for mount in &args.mounts {
        println!("rtsp://{}:{}{mount}", args.address, server.bound_port());
    }
    main_loop.run();
    Ok(())
}
