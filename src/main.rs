use clap::Parser;

use apigw_operator::cli::{crd_yaml, run_plan, Cli, Command};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
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
