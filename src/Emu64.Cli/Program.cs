using Emu64.Cli;

return Cli.Execute(args, attachStdin: true);
