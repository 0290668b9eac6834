use clap::Parser;

use apigw_operator::cli::{crd_yaml, run_plan, run_plan_aws, Cli, Command};

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
        Command::Plan(args) => match if args.aws {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the async runtime: {e}"))
                .and_then(|runtime| runtime.block_on(run_plan_aws(&args)))
        } else {
            run_plan(&args)
        } {
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
