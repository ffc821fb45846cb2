import MalotCheck.Basic
