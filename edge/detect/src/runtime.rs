use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Why a detector could not be built or could not run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// The ONNX Runtime shared library is missing or is not a usable onnxruntime build.
    #[error("cannot load onnx runtime library {path}: {message}")]
    Runtime { path: PathBuf, message: String },
    /// The model file is missing, unreadable or not a valid ONNX graph.
    #[error("cannot load model {path}: {message}")]
    Model { path: PathBuf, message: String },
    /// The model's inputs/outputs are not those of a YOLO v8/v11 detection export.
    #[error("model {path} is not a yolo v8/v11 detection export: {message}")]
    Shape { path: PathBuf, message: String },
    /// The detector settings are unusable (e.g. a tile overlap not smaller than the tile).
    #[error("invalid detector config: {0}")]
    Config(String),
    /// Inference failed for one frame.
    #[error("inference failed: {0}")]
    Inference(String),
}

/// A loaded ONNX Runtime (the shared library plus its environment).
#[derive(Debug, Clone)]
pub struct OnnxRuntime {
    pub(crate) env: ort::environment::Environment,
}

impl OnnxRuntime {
    /// Loads the ONNX Runtime shared library at `library` (e.g. the one from the PyPI wheel).
    ///
    /// ONNX Runtime allows one library and one environment per process: a second call with the
    /// same path returns the loaded runtime, a call with another path is an error.
    pub fn load(library: &Path) -> Result<OnnxRuntime, DetectError> {
        static LOADED: Mutex<Option<(PathBuf, ort::environment::Environment)>> = Mutex::new(None);
        let err = |message: String| DetectError::Runtime { path: library.to_owned(), message };
        let canonical = library.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => err("no such file".into()),
            _ => err(e.to_string()),
        })?;
        let mut loaded = LOADED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((path, env)) = loaded.as_ref() {
            return if *path == canonical {
                Ok(OnnxRuntime { env: env.clone() })
            } else {
                Err(err(format!("another onnx runtime ({}) is already loaded in this process", path.display())))
            };
        }
        let builder = ort::init_from(&canonical).map_err(|e| err(e.to_string()))?;
        let env = builder.with_name("vigil").build().map_err(|e| err(e.to_string()))?;
        *loaded = Some((canonical, env.clone()));
        Ok(OnnxRuntime { env })
    }
}
