use clap::Parser;

use apigw_operator::cli::{crd_yaml, run_plan, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(apigw_operator::run::run(*args)),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                1
            }
        },
        Command::Crd => {
            print!("{}", crd_yaml());
            0
        }
        Command::Version => {
            println!("apigw-operator {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Command::Plan(args) => match run_plan(&args) {
            Ok(outcome) => {
                print!("{}", outcome.stdout);
                eprint!("{}", outcome.stderr);
                outcome.exit_code
            }
            Err(message) => {
                eprintln!("error: {message}");
                1
            }
        },
    };
    std::process::exit(code);
}
