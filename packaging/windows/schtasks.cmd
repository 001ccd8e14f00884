@rem stagesync in Windows Task Scheduler without the XML definition: the same command line,
@rem schedule (every 5 minutes) and user as stagesync-task.xml; /SC MINUTE tasks do not start
@rem a second instance while one runs. /RP * asks for the stagesync user's password.
schtasks /Create /TN "stagesync" /SC MINUTE /MO 5 /RU stagesync /RP * /TR "\"C:\Program Files\stagesync\stagesync.exe\" run --config C:\ProgramData\stagesync\stagesync.yaml --once --full-every 24h --state C:\ProgramData\stagesync\stagesync.state.json"
