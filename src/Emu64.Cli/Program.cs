using Emu64.Cli;

return JitRelaunch.Run(args) ?? Cli.Execute(args, attachStdin: true);
