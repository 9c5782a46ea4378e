using RollingReboot.Cli;

return await CliApp.RunAsync(args, CliEnvironment.FromProcess());
