using System.CommandLine;
using RollingReboot.Cli.Commands;
using RollingReboot.Cli.Configuration;
using RollingReboot.Core.Ports;

namespace RollingReboot.Cli;

public static class CliApp
{
    public static RootCommand BuildRoot(CliEnvironment env)
    {
        // The root is the plan/run itself: `rollreboot --clustername NAME [--exec]`.
        var root = new RunCommand(env).Root;
        root.Subcommands.Add(LabCommand.Create(env));
        root.Subcommands.Add(StatusCommand.Create(env));
        root.Subcommands.Add(new ResumeCommand(env).Command);
        root.Subcommands.Add(new RestoreCommand(env).Command);
        root.Subcommands.Add(new EvacuateCommand(env).Command);
        root.Subcommands.Add(new ReturnCommand(env).Command);
        ConfigFile.AddTo(root);
        root.Subcommands.Add(CompletionCommand.Create(env, root));
        return root;
    }

    public static async Task<int> RunAsync(string[] args, CliEnvironment env, CancellationToken cancellationToken = default)
    {
        var root = BuildRoot(env);
        var parse = root.Parse(args);
        if (parse.Errors.Count == 0)
        {
            try
            {
                // Defaults from the config file become options the command line left out (see docs/operations.md).
                parse = ConfigFile.Apply(root, parse, args, env);
            }
            catch (UserFacingException e)
            {
                await env.Error.WriteLineAsync("rollreboot: " + e.Message);
                return e.ExitCode;
            }
        }

        if (parse.Errors.Count > 0)
        {
            // Bad usage is exit 2 (the contract), one line naming what is wrong.
            await env.Error.WriteLineAsync("rollreboot: " + string.Join("; ", parse.Errors.Select(e => e.Message)) + " (see rollreboot --help)");
            return ExitCodes.BadInput;
        }

        try
        {
            // The run handles SIGINT/SIGTERM itself so that restoring the pool is never cut short.
            return await parse.InvokeAsync(new InvocationConfiguration { Output = env.Out, Error = env.Error, ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false }, cancellationToken);
        }
        catch (UserFacingException e)
        {
            await env.Error.WriteLineAsync("rollreboot: " + e.Message);
            return e.ExitCode;
        }
        catch (PoolOperationException e)
        {
            await env.Error.WriteLineAsync("rollreboot: " + e.Message);
            return ExitCodes.BadInput;
        }
        catch (CloudStackException e)
        {
            await env.Error.WriteLineAsync("rollreboot: " + e.Message);
            return ExitCodes.BadInput;
        }
        catch (OperationCanceledException)
        {
            await env.Error.WriteLineAsync("rollreboot: interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException or System.Net.Http.HttpRequestException)
        {
            // Unexpected, but still one line: the details are in the run's log file.
            await env.Error.WriteLineAsync($"rollreboot: {e.GetType().Name}: {e.Message}");
            return ExitCodes.BadInput;
        }
    }
}
