using Emu64.Cli;

return Cli.Main(args);
